"""HumanEval's 164 canonical solutions pass; HumanEvalFix's 164 buggy programs fail."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest

from next_tracer.engine import TracerEngine
from nextapi.tracer.types import Limits, RunResult, Verdict
from tests.conftest import DATA

pytestmark = pytest.mark.slow

LIMITS = Limits(timeout_s=20.0, memory_mb=1024)  # CPU seconds: references pass on a loaded machine
# A buggy program only has to fail: those that loop forever stop after 3 CPU seconds, not 20.
BUGGY_LIMITS = Limits(timeout_s=3.0, memory_mb=1024)


def _jsonl(path: Any) -> list[dict[str, Any]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


async def _run_all(engine: TracerEngine, jobs: list[tuple[str, str]], limits: Limits = LIMITS) -> list[RunResult]:
    return await asyncio.gather(*(engine.run_tests(program, [test], limits) for program, test in jobs))


async def test_humaneval_canonical_solutions_pass(engine: TracerEngine) -> None:
    tasks = _jsonl(DATA / "humaneval" / "HumanEval.jsonl.gz")
    assert len(tasks) == 164
    jobs = [(t["prompt"] + t["canonical_solution"], t["test"] + "\ncheck(%s)\n" % t["entry_point"]) for t in tasks]
    results = await _run_all(engine, jobs)
    failed = {
        t["task_id"]: r.tests[0].message for t, r in zip(tasks, results, strict=True) if r.verdict is not Verdict.PASSED
    }
    assert failed == {}


async def test_humanevalfix_buggy_programs_fail(engine: TracerEngine) -> None:
    tasks = _jsonl(DATA / "humanevalfix" / "humanevalpack.jsonl")
    assert len(tasks) == 164
    jobs = [(t["prompt"] + t["buggy_solution"], t["test"]) for t in tasks]
    results = await _run_all(engine, jobs, BUGGY_LIMITS)
    passed = [t["task_id"] for t, r in zip(tasks, results, strict=True) if r.verdict is Verdict.PASSED]
    assert passed == []
