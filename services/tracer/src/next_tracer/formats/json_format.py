"""The structured events as JSON, for tools that build their own rendering."""

from __future__ import annotations

import json

from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_tracer.formats.base import CapturedTrace, RenderOptions


class JsonFormat:
    description = "JSON: the list of structured events (step, source, line, name, value, kind)"

    def render(self, trace: CapturedTrace, options: RenderOptions) -> str:
        return json.dumps({"events": [e.to_json() for e in trace.events], "truncated": trace.truncated}, indent=1)


@hookimpl
def next_register_trace_formats(register: RegisterFn) -> None:
    register("json", JsonFormat())
