"""Hook specifications: the documented contract for plugins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from next_common.plugins import hookspec

RegisterFn = Callable[[str, Any], None]


@hookspec
def next_register_trace_formats(register: RegisterFn) -> None:
    """Register trace formats by name.

    :param register: call ``register(name, format)`` once per format. ``format`` is an
        object with a ``description: str`` attribute and a method
        ``render(trace: next_tracer.formats.base.CapturedTrace, options: RenderOptions) -> str``.
        Names are unique across all plugins; a duplicate is an error at start-up.

    Called once, when the tracer builds its format registry.
    """
