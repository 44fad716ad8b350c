"""The repair-task record and its JSONL storage (validated line by line, written atomically)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from next_common.files import atomic_write


class TaskFormatError(ValueError):
    """A task file is malformed; the message names the file, the line and the field."""


@dataclass(frozen=True)
class IoGrading:
    """EvalPlus-style grading: call ``entry_point`` on each input, compare with the expected output.

    Inputs and outputs are in the tracer's plain-value JSON encoding (tuples and sets tagged).
    """

    inputs_json: list[str]
    expected_json: list[str]
    atol: float = 0.0
    oracle: str = ""  # a named tracer oracle, e.g. "find_zero"
    time_limit_s: float = 1.0  # per input, scaled from the reference solution's run time


@dataclass(frozen=True)
class TaskRecord:
    task_id: str
    source: str  # e.g. "hefix-plus", "mbpp-r/mutation"
    problem: str  # the natural-language problem
    buggy_program: str
    entry_point: str
    shown_tests: list[str]  # test statements shown in the prompt (asserts or a check script)
    grading_tests: list[str] = field(default_factory=list)  # statements used for grading
    grading_io: IoGrading | None = None  # and/or EvalPlus-style inputs
    reference: str | None = None  # a known correct program
    provenance: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_STR_FIELDS = ("task_id", "source", "problem", "buggy_program", "entry_point")


def _fail(where: str, message: str) -> TaskFormatError:
    return TaskFormatError("%s: %s" % (where, message))


def _str_list(data: dict[str, Any], name: str, where: str, required: bool) -> list[str]:
    if name not in data:
        if required:
            raise _fail(where, "field %r is missing" % name)
        return []
    value = data[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, "field %r must be a list of strings" % name)
    return list(value)


def _io(data: Any, where: str) -> IoGrading | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise _fail(where, "field 'grading_io' must be an object or null")
    inputs = _str_list(data, "inputs_json", where + " grading_io", True)
    expected = _str_list(data, "expected_json", where + " grading_io", True)
    if len(inputs) != len(expected):
        raise _fail(where, "grading_io has %d inputs but %d expected outputs" % (len(inputs), len(expected)))
    for key in ("atol", "time_limit_s"):
        if key in data and not isinstance(data[key], (int, float)):
            raise _fail(where, "field 'grading_io.%s' must be a number" % key)
    oracle = data.get("oracle", "")
    if not isinstance(oracle, str):
        raise _fail(where, "field 'grading_io.oracle' must be a string")
    return IoGrading(inputs, expected, float(data.get("atol", 0.0)), oracle, float(data.get("time_limit_s", 1.0)))


def task_from_json(data: Any, where: str = "task") -> TaskRecord:
    """Validate one decoded JSON object; errors name ``where`` (e.g. ``file.jsonl:12``) and the field."""
    if not isinstance(data, dict):
        raise _fail(where, "a task must be a JSON object, not %s" % type(data).__name__)
    for name in _STR_FIELDS:
        if name not in data:
            raise _fail(where, "field %r is missing" % name)
        if not isinstance(data[name], str) or (name != "problem" and not data[name]):
            raise _fail(where, "field %r must be a non-empty string" % name)
    if not data["entry_point"].isidentifier():
        raise _fail(where, "field 'entry_point' %r is not a Python identifier" % data["entry_point"])
    shown = _str_list(data, "shown_tests", where, True)
    if not shown:
        raise _fail(where, "field 'shown_tests' is empty")
    grading = _str_list(data, "grading_tests", where, False)
    io = _io(data.get("grading_io"), where)
    reference = data.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise _fail(where, "field 'reference' must be a string or null")
    provenance = data.get("provenance", {})
    if not isinstance(provenance, dict) or not all(isinstance(v, str) for v in provenance.values()):
        raise _fail(where, "field 'provenance' must be an object of strings")
    return TaskRecord(
        data["task_id"],
        data["source"],
        data["problem"],
        data["buggy_program"],
        data["entry_point"],
        shown,
        grading,
        io,
        reference,
        dict(provenance),
    )


def iter_tasks(path: str | Path) -> Iterator[TaskRecord]:
    """Tasks of a JSONL file in order; the first malformed line raises TaskFormatError."""
    path = Path(path)
    try:
        handle = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")
    except OSError as exc:
        raise TaskFormatError("%s: cannot read task file: %s" % (path, exc.strerror)) from None
    seen: set[str] = set()
    with handle:
        for number, line in enumerate(_lines(handle, path), start=1):
            if not line.strip():
                continue
            where = "%s:%d" % (path, number)
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _fail(where, "not valid JSON (%s)" % exc.msg) from None
            task = task_from_json(data, where)
            if task.task_id in seen:
                raise _fail(where, "task_id %r appears twice" % task.task_id)
            seen.add(task.task_id)
            yield task


def _lines(handle: IO[str], path: Path) -> Iterator[str]:
    try:
        yield from handle
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TaskFormatError("%s: cannot read task file: %s" % (path, exc)) from None


def load_tasks(path: str | Path) -> list[TaskRecord]:
    return list(iter_tasks(path))


def save_tasks(path: str | Path, tasks: Iterable[TaskRecord]) -> int:
    """Write JSONL (gzip-compressed for ``.gz``) atomically: a crash never leaves a half-written file."""
    path = Path(path)
    count = 0
    with atomic_write(path) as raw:
        sink: Any = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if path.suffix == ".gz" else raw
        for task in tasks:
            sink.write((json.dumps(task.to_json(), ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
        if sink is not raw:
            sink.close()
    return count
