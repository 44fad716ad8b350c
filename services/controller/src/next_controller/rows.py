"""The typed rows of a run directory's logs: one graded sample, one training example.

Logs stay JSON Lines with the same keys (a run resumes from logs written by earlier versions);
these types are what the code reads and writes in between.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from next_controller.rundir import read_jsonl


@dataclass(frozen=True)
class Grade:
    """A completion parsed and its fix tested: what the tracer said about one sample."""

    rationale: str
    program: str | None  # None: no program could be parsed
    parse: str  # how the program was found (next_tasks.parsing)
    passed: bool
    why: str  # the first failing test, or why nothing was tested


@dataclass(frozen=True)
class SampleRow:
    """One graded sample in a sample log (``round-i/samples.jsonl``, ``eval/.../*.jsonl``)."""

    key: str  # task and prompt variant, e.g. "mbpp-r/17/0|trace": unique with sample_index
    task_id: str
    sample_index: int
    with_trace: bool
    text: str  # the completion as the model wrote it
    rationale: str
    program: str | None
    parse: str
    passed: bool
    why: str
    adapter: str  # "" for the base model
    seed: int
    finish_reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SampleRow:
        return cls(**{f.name: raw[f.name] for f in fields(cls)})


def read_rows(path: Path) -> list[SampleRow]:
    """A sample log ([] if it does not exist yet)."""
    return [SampleRow.from_json(r) for r in read_jsonl(path)]


@dataclass(frozen=True)
class TrainingExample:
    """One line of a round's ``train.jsonl``: exactly what sampling showed the model, and the kept answer."""

    prompt: str
    completion: str
    task_id: str
    sample_index: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
