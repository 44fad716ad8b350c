"""Line-by-line state listing in the style of Nye et al.'s scratchpad traces."""

from __future__ import annotations

from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_tracer.formats.base import CapturedTrace, RenderOptions


class ScratchpadFormat:
    description = "Scratchpad: every executed step as the source line followed by the state it produced"

    def render(self, trace: CapturedTrace, options: RenderOptions) -> str:
        sources = {"program": trace.source_lines("program"), "test": trace.source_lines("test")}
        out = []
        for group in trace.steps():
            first = group[0]
            lines = sources.get(first.source, [])
            code = lines[first.line - 1].strip() if 0 < first.line <= len(lines) else ""
            state = ", ".join("%s: %s" % (e.name, e.value) for e in group)
            out.append("[%d] line %d: %s\n     state: {%s}" % (first.step, first.line, code, state))
        if trace.truncated:
            out.append("[...] trace truncated")
        return "\n".join(out) + "\n"


@hookimpl
def next_register_trace_formats(register: RegisterFn) -> None:
    register("scratchpad", ScratchpadFormat())
