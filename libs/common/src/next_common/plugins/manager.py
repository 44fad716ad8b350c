"""One pluggy manager for the whole system, with a typed registry facade."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

import pluggy

from next_common.plugins import ENTRY_POINT_GROUP, PROJECT_NAME, hookspecs

log = logging.getLogger(__name__)

DISABLED_ENV = "NEXT_DISABLED_PLUGINS"


def get_plugin_manager(builtins: Iterable[Any] = (), load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build the manager: hook specs, built-in plugins, then entry-point plugins.

    Built-ins are registered exactly like third-party plugins. Tests pass
    ``load_entry_points=False`` and register what they need explicitly. Plugins named in
    the comma-separated ``NEXT_DISABLED_PLUGINS`` environment variable are blocked.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in filter(None, (n.strip() for n in os.environ.get(DISABLED_ENV, "").split(","))):
        pm.set_blocked(name)
    for plugin in builtins:
        pm.register(plugin, name=getattr(plugin, "__name__", None))
    if load_entry_points:
        loaded = pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        if loaded:
            log.info("loaded %d plugin(s) from entry points", loaded)
    pm.check_pending()
    return pm


class Registry:
    """Name -> implementation, filled by a ``next_register_*`` hook; duplicates rejected."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str, item: Any) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("%s plugin registered an empty or non-string name: %r" % (self.kind, name))
        if name in self._items:
            raise ValueError("two plugins register a %s named %r" % (self.kind, name))
        self._items[name] = item

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> Any:
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._items.items())


def collect(
    kind: str,
    hook: str,
    builtins: Iterable[Any],
    extra_plugins: Iterable[Any] = (),
    load_entry_points: bool = True,
) -> Registry:
    """The registry a ``next_register_*`` hook fills: built-ins, entry points, then ``extra_plugins``."""
    pm = get_plugin_manager(builtins, load_entry_points=load_entry_points)
    for plugin in extra_plugins:
        pm.register(plugin)
    registry = Registry(kind)
    getattr(pm.hook, hook)(register=registry.register)
    return registry
