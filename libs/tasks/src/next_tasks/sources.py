"""Reading the public benchmark files: local copies (laid out as in ``shared/data``) or the hub."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SourceError(ValueError):
    """A dataset file is missing or corrupt; the message names the file and the line."""


HUMANEVAL = "humaneval/HumanEval.jsonl.gz"
HUMANEVALPACK = "humanevalfix/humanevalpack.jsonl"
HUMANEVALPLUS = "evalplus/humanevalplus-v0.1.10/HumanEvalPlus.jsonl.gz"
MBPP = "mbpp/mbpp.jsonl"


def read_jsonl(path: Path, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Records of a JSONL file (``.gz`` too); any unreadable line or missing field is a SourceError."""
    if not path.is_file():
        raise SourceError("%s: file not found" % path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    records = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError("%s:%d: not valid JSON (%s)" % (path, number, exc.msg)) from None
                missing = [f for f in required if f not in record]
                if missing:
                    raise SourceError("%s:%d: missing field(s) %s" % (path, number, ", ".join(missing)))
                records.append(record)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SourceError("%s: cannot read (%s)" % (path, exc)) from None
    return records


@dataclass(frozen=True)
class HumanEvalSources:
    """The three parts of HeFix+, keyed by HumanEval number."""

    humaneval: dict[int, dict[str, Any]]
    pack: dict[int, dict[str, Any]]
    plus: dict[int, dict[str, Any]]
    origin: dict[str, str]


def _by_number(records: list[dict[str, Any]], prefix: str) -> dict[int, dict[str, Any]]:
    return {int(str(r["task_id"]).removeprefix(prefix)): r for r in records}


def load_humaneval_local(source: str | Path) -> HumanEvalSources:
    root = Path(source)
    he = read_jsonl(root / HUMANEVAL, ("task_id", "prompt", "entry_point", "test"))
    pack = read_jsonl(root / HUMANEVALPACK, ("task_id", "prompt", "buggy_solution", "test", "docstring", "entry_point"))
    plus = read_jsonl(root / HUMANEVALPLUS, ("task_id", "prompt", "canonical_solution", "base_input", "plus_input"))
    return HumanEvalSources(
        _by_number(he, "HumanEval/"),
        _by_number(pack, "Python/"),
        _by_number(plus, "HumanEval/"),
        {
            "humaneval": str(root / HUMANEVAL),
            "humanevalpack": str(root / HUMANEVALPACK),
            "humanevalplus": str(root / HUMANEVALPLUS),
        },
    )


def load_humaneval_hub() -> HumanEvalSources:
    """The same parts from the Hugging Face hub (needs the ``hub`` extra: ``datasets``)."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise SourceError(
            "reading from the hub needs the 'datasets' package (pip install next-tasks[hub]), "
            "or pass --source DIR with local copies"
        ) from None
    he = [dict(r) for r in load_dataset("openai_humaneval", split="test")]
    pack = [dict(r) for r in load_dataset("bigcode/humanevalpack", "python", split="test")]
    plus = [dict(r) for r in load_dataset("evalplus/humanevalplus", split="test")]
    for record in plus:  # the hub copy stores inputs as JSON text in some versions
        for key in ("base_input", "plus_input"):
            if isinstance(record.get(key), str):
                record[key] = json.loads(record[key])
    return HumanEvalSources(
        _by_number(he, "HumanEval/"),
        _by_number(pack, "Python/"),
        _by_number(plus, "HumanEval/"),
        {
            "humaneval": "hub:openai_humaneval",
            "humanevalpack": "hub:bigcode/humanevalpack",
            "humanevalplus": "hub:evalplus/humanevalplus",
        },
    )
