"""Built-in trace formats; each module is a plugin registered like third-party ones."""

from next_tracer.formats import json_format, next_inline, scratchpad

BUILTIN_FORMAT_PLUGINS = (next_inline, scratchpad, json_format)
