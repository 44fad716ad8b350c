"""Collects trace formats from every registered plugin."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from next_common.errors import InvalidArgumentError
from next_common.plugins.manager import collect
from next_tracer.formats import BUILTIN_FORMAT_PLUGINS
from next_tracer.formats.base import TraceFormat


class FormatRegistry:
    def __init__(self, extra_plugins: Iterable[Any] = (), load_entry_points: bool = True) -> None:
        self._registry = collect(
            "trace format", "next_register_trace_formats", BUILTIN_FORMAT_PLUGINS, extra_plugins, load_entry_points
        )

    def get(self, name: str) -> TraceFormat:
        if name not in self._registry:
            raise InvalidArgumentError(
                "unknown trace format %r; available: %s" % (name, ", ".join(self._registry.names()))
            )
        fmt: TraceFormat = self._registry.get(name)
        return fmt

    def describe(self) -> list[tuple[str, str]]:
        return [(name, str(getattr(fmt, "description", ""))) for name, fmt in self._registry.items()]
