"""A third-party trace format: the NExT states, one per line, upper-cased."""

from next_common.plugins import hookimpl


class ShoutFormat:
    description = "Every state on its own line, upper-cased (sample plugin)"

    def render(self, trace, options):
        return "\n".join("%d %s=%s" % (e.step, e.name.upper(), e.value) for e in trace.events) + "\n"


@hookimpl
def next_register_trace_formats(register):
    register("shout", ShoutFormat())
