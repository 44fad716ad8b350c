"""What installing a distribution pulls in, read from the installed metadata (tests run offline)."""

from __future__ import annotations

import importlib.metadata


def pulled_by(dist: str) -> set[str]:
    """Every distribution ``pip install DIST`` pulls in (no extras), walked through the installed
    metadata: the same closure pip resolves, without an index (the suite runs offline)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for raw in importlib.metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen
