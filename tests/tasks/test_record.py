"""The task record: JSONL round trip, validation that names line and field, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from next_tasks.record import IoGrading, TaskFormatError, TaskRecord, load_tasks, save_tasks

TASK = TaskRecord(
    task_id="T/1",
    source="test",
    problem="Add two numbers.",
    buggy_program="def add(a, b):\n    return a - b\n",
    entry_point="add",
    shown_tests=["assert add(1, 2) == 3"],
    grading_io=IoGrading(["[1, 2]"], ["3"], 0.0, "", 1.0),
    reference="def add(a, b):\n    return a + b\n",
    provenance={"made": "by hand"},
)


@pytest.mark.parametrize("name", ["tasks.jsonl", "tasks.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    path = tmp_path / "sub" / name
    assert save_tasks(path, [TASK, TaskRecord(**{**TASK.to_json(), "task_id": "T/2", "grading_io": None})]) == 2
    loaded = load_tasks(path)
    assert loaded[0] == TASK and loaded[1].task_id == "T/2" and loaded[1].grading_io is None
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("buggy_program"), ":2: field 'buggy_program' is missing"),
        (lambda d: d.update(shown_tests="assert x"), ":2: field 'shown_tests' must be a list of strings"),
        (lambda d: d.update(entry_point="not an id"), ":2: field 'entry_point' 'not an id' is not a Python identifier"),
        (lambda d: d.update(shown_tests=[]), ":2: field 'shown_tests' is empty"),
        (lambda d: d["grading_io"].update(expected_json=[]), ":2: grading_io has 1 inputs but 0 expected outputs"),
        (lambda d: d.update(task_id="T/1"), ":2: task_id 'T/1' appears twice"),
    ],
)
def test_malformed_lines_name_line_and_field(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    good = TASK.to_json()
    bad = json.loads(json.dumps({**good, "task_id": "T/9"}))
    mutate(bad)
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(TaskFormatError) as info:
        load_tasks(path)
    assert str(info.value) == str(path) + message


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n{not json\n")
    with pytest.raises(TaskFormatError, match=r"t.jsonl:2: not valid JSON"):
        load_tasks(path)
    with pytest.raises(TaskFormatError, match="cannot read task file"):
        load_tasks(tmp_path / "missing.jsonl")


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    save_tasks(path, [TASK])

    def broken():  # type: ignore[no-untyped-def]
        yield TASK
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        save_tasks(path, broken())
    assert load_tasks(path) == [TASK] and [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]
