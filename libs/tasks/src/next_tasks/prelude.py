"""The task's own helpers, carried by its tests.

The tracer lets a test call only the program's entry point, so a fix cannot replace a helper
that the check relies on (HumanEval/32's check calls ``poly``, /38 ``encode_cyclic``, /50
``encode_shift``). A test that needs such a helper gets the dataset's own definition, taken
from the problem's prompt, in front of it.
"""

from __future__ import annotations

import ast


def helper_prelude(prompt: str, entry_point: str, test: str) -> str:
    """The prompt's top-level statements the test uses (with the imports they need), or ""."""
    try:
        tree = ast.parse(prompt)
        used = _names(compile(test, "<test>", "exec"))
    except SyntaxError:
        return ""
    helpers = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name != entry_point and node.name in used
    ]
    if not helpers:
        return ""
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    parts = [ast.get_source_segment(prompt, node) or "" for node in imports + helpers]
    return "\n".join(parts) + "\n\n"


def _names(code: object) -> set[str]:
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(getattr(c, "co_names", ()))
        stack.extend(k for k in getattr(c, "co_consts", ()) if hasattr(k, "co_names"))
    return names
