"""Splitting a model's completion into a rationale and a fixed program.

A failed parse is an outcome (``program is None`` with a reason), never an exception:
self-training counts and reports them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.DOTALL)
OPEN_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n")
CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")
NON_PYTHON = {"text", "txt", "output", "console", "bash", "sh", "shell", "json"}


@dataclass(frozen=True)
class ParsedCompletion:
    rationale: str
    program: str | None
    method: str  # "fenced", "unterminated-fence", "unfenced", or "none"
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.program is not None


def _defines(program: str, entry_point: str | None) -> str:
    """'' when ``program`` parses and defines ``entry_point``; otherwise the reason."""
    try:
        tree = ast.parse(program)
    except SyntaxError as exc:
        return "the code does not parse: %s (line %s)" % (exc.msg, exc.lineno)
    if entry_point is None:
        return ""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == entry_point:
            return ""
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == entry_point for t in node.targets):
            return ""
    return "the code does not define %r" % entry_point


def _trim_to_parse(code: str) -> str | None:
    """Drop trailing lines of a truncated block until what remains parses (None if nothing does)."""
    lines = code.rstrip().split("\n")
    while lines:
        candidate = "\n".join(lines).rstrip() + "\n"
        try:
            ast.parse(candidate)
            return candidate
        except SyntaxError:
            lines.pop()
    return None


def parse_completion(text: str, entry_point: str | None = None) -> ParsedCompletion:
    """Rationale and program: the last fenced Python block that defines ``entry_point``, then fallbacks.

    Fallbacks, in order: an opening fence never closed (a truncated generation; trailing
    lines that do not parse are dropped), then unfenced code from the last line that starts
    a definition of ``entry_point`` (or any top-level definition) to the end.
    """
    blocks = [m for m in FENCE.finditer(text) if m.group(1).lower() not in NON_PYTHON]
    errors = []
    for match in reversed(blocks):
        code = match.group(2).strip("\n") + "\n"
        reason = _defines(code, entry_point)
        if not reason:
            return ParsedCompletion(text[: match.start()].strip(), code, "fenced")
        errors.append(reason)
    last_close = blocks[-1].end() if blocks else 0
    opening = None
    for match in OPEN_FENCE.finditer(text, last_close):
        opening = match
    if opening is not None and opening.group(1).lower() not in NON_PYTHON:
        trimmed = _trim_to_parse(text[opening.end() :])
        if trimmed is not None and not _defines(trimmed, entry_point):
            return ParsedCompletion(text[: opening.start()].strip(), trimmed, "unterminated-fence")
    unfenced = _unfenced(text, entry_point)
    if unfenced is not None:
        start, code = unfenced
        return ParsedCompletion(text[:start].strip(), code, "unfenced")
    error = errors[0] if errors else "no code block found"
    return ParsedCompletion(text.strip(), None, "none", error)


def _unfenced(text: str, entry_point: str | None) -> tuple[int, str] | None:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    wanted = re.compile(r"^(async )?def %s\s*\(" % re.escape(entry_point)) if entry_point else CODE_START
    starts = [i for i, line in enumerate(lines) if wanted.match(line)]
    for start in reversed(starts):
        # include the imports and decorators right above the definition
        while start > 0 and CODE_START.match(lines[start - 1]):
            start -= 1
        code = _trim_to_parse("\n".join(lines[start:]))
        while code is not None and _defines(code, entry_point):
            code = _trim_to_parse("\n".join(code.rstrip().split("\n")[:-1]))
        if code is not None:
            return offsets[start], code
    return None
