"""Collects trace formats from every registered plugin."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from next_common.errors import InvalidArgumentError
from next_common.plugins.manager import Registry, get_plugin_manager
from next_tracer.formats import BUILTIN_FORMAT_PLUGINS
from next_tracer.formats.base import TraceFormat


class FormatRegistry:
    def __init__(self, extra_plugins: Iterable[Any] = (), load_entry_points: bool = True) -> None:
        pm = get_plugin_manager(BUILTIN_FORMAT_PLUGINS, load_entry_points=load_entry_points)
        for plugin in extra_plugins:
            pm.register(plugin)
        self._registry = Registry("trace format")
        pm.hook.next_register_trace_formats(register=self._registry.register)

    def get(self, name: str) -> TraceFormat:
        if name not in self._registry:
            raise InvalidArgumentError(
                "unknown trace format %r; available: %s" % (name, ", ".join(self._registry.names()))
            )
        fmt: TraceFormat = self._registry.get(name)
        return fmt

    def describe(self) -> list[tuple[str, str]]:
        return [(name, str(getattr(fmt, "description", ""))) for name, fmt in self._registry.items()]
