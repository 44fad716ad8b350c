"""Paths that clients name and services open: confined to a root when the service has one."""

from __future__ import annotations

from pathlib import Path

from next_common.errors import InvalidArgumentError


def confine(path: str, root: str, what: str, root_name: str) -> Path:
    """``path`` resolved under ``root`` (relative paths are taken from it); outside it is an error.

    With no root, the path is only made absolute: the service trusts whoever configured it.
    """
    if not root:
        return Path(path).expanduser().absolute()
    resolved = (Path(root) / path).resolve()
    if not resolved.is_relative_to(Path(root).resolve()):
        raise InvalidArgumentError("%s %s lies outside the %s %s" % (what, path, root_name, root))
    return resolved
