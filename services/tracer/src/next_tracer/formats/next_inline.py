"""The paper's format (NExT, Figure 2): states as inline comments on the lines that made them."""

from __future__ import annotations

from collections import defaultdict

from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_tracer.formats.base import CapturedTrace, RenderOptions
from nextapi.tracer.types import TraceEvent


def render_step(group: list[TraceEvent]) -> str:
    step = group[0].step
    if group[0].kind == "exception":
        return "(%d) __exception__ = %s" % (step, group[0].value)
    return "(%d) %s" % (step, " ".join("%s=%s;" % (e.name, e.value) for e in group))


def elide(parts: list[str], max_states: int) -> list[str]:
    """First two, '...', and the last, once a line has more than ``max_states`` states."""
    if max_states <= 0 or len(parts) <= max_states:
        return parts
    head = max(1, max_states - 1)
    return [*parts[:head], "...;", *parts[-1:]]


class NextInlineFormat:
    description = "NExT inline comments: '# (k) var=value;' per line, global step numbers (the paper's Figure 2)"

    def render(self, trace: CapturedTrace, options: RenderOptions) -> str:
        per_line: dict[tuple[str, int], list[str]] = defaultdict(list)
        for group in trace.steps():
            per_line[(group[0].source, group[0].line)].append(render_step(group))
        out: list[str] = []
        for source in ("program", "test"):
            lines = trace.source_lines(source)
            if source == "test" and out:
                out.append("")
            for number, text in enumerate(lines, start=1):
                states = per_line.get((source, number))
                if states:
                    text = "%s  # %s" % (text.rstrip(), " ".join(elide(states, options.max_states_per_line)))
                out.append(text)
        if trace.truncated:
            out.append("# ... trace truncated after %d steps" % len(trace.steps()))
        return "\n".join(out) + "\n"


@hookimpl
def next_register_trace_formats(register: RegisterFn) -> None:
    register("next-inline", NextInlineFormat())
