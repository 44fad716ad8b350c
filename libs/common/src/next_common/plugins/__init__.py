"""Plugin system of the NExT system (pluggy).

Third-party plugins are modules or objects with functions decorated by ``hookimpl``
and advertised through the ``next.plugins`` entry-point group::

    [project.entry-points."next.plugins"]
    my_formats = "my_package.formats"

See ``docs/plugins.md`` for the hooks and an example.
"""

import pluggy

PROJECT_NAME = "next"
ENTRY_POINT_GROUP = "next.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec"]
