"""HeFix+: the 164 HumanEvalFix buggy programs graded with EvalPlus's HumanEval+ inputs.

Expected outputs are computed by running EvalPlus's corrected canonical solutions in the
tracer's sandbox (HumanEval's own solutions fail HumanEval+ on 19 tasks), and every task is
checked: its buggy program must fail a shown test, and its reference must pass every graded
input (HumanEval/32 through the ``find_zero`` oracle).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from next_tasks.prelude import helper_prelude
from next_tasks.record import IoGrading, TaskRecord
from next_tasks.sources import HumanEvalSources
from nextapi.tracer import plain
from nextapi.tracer.client import TracerClient
from nextapi.tracer.types import IoTests, Limits, Verdict

log = logging.getLogger(__name__)

SOURCE = "hefix-plus"
ORACLES = {"find_zero": "find_zero"}  # entry point -> tracer oracle
REFERENCE_TIMEOUT_S = 20.0
MIN_TIME_LIMIT_S = 1.0
TIME_LIMIT_FACTOR = 4.0  # EvalPlus: max(T_base, k * T_ref)


@dataclass
class BuildReport:
    tasks: int = 0
    seen: int = 0
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> task ids
    inputs: int = 0

    def drop(self, task_id: str, reason: str) -> None:
        log.warning("dropping %s: %s", task_id, reason)
        self.dropped.setdefault(reason, []).append(task_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "seen": self.seen,
            "inputs": self.inputs,
            "dropped": {reason: len(ids) for reason, ids in self.dropped.items()},
            "dropped_tasks": self.dropped,
        }


async def build_hefix_plus(
    sources: HumanEvalSources,
    tracer: TracerClient,
    concurrency: int = 4,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[TaskRecord], BuildReport]:
    report = BuildReport()
    numbers = sorted(sources.pack)
    report.seen = len(numbers)
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int) -> TaskRecord | None:
        async with gate:
            task = await _build_one(number, sources, tracer, report)
            if progress is not None:
                progress("HumanEval/%d" % number)
            return task

    built = await asyncio.gather(*(one(n) for n in numbers))
    tasks = [t for t in built if t is not None]
    report.tasks = len(tasks)
    report.inputs = sum(len(t.grading_io.inputs_json) for t in tasks if t.grading_io)
    return tasks, report


async def _build_one(
    number: int, sources: HumanEvalSources, tracer: TracerClient, report: BuildReport
) -> TaskRecord | None:
    task_id = "HumanEval/%d" % number
    pack, plus, he = sources.pack.get(number), sources.plus.get(number), sources.humaneval.get(number)
    if pack is None or plus is None or he is None:
        report.drop(task_id, "missing from one of humanevalpack, HumanEval, HumanEval+")
        return None
    entry = pack["entry_point"]
    buggy = pack["prompt"] + pack["buggy_solution"]
    reference = plus["prompt"] + plus["canonical_solution"]
    shown = [helper_prelude(pack["prompt"], entry, pack["test"]) + pack["test"]]
    inputs = [plain.dumps(args) for args in plus["base_input"] + plus["plus_input"]]
    atol = float(plus.get("atol") or 0.0)
    oracle = ORACLES.get(entry, "")

    # 1. Reference outputs: one sandboxed execution for all inputs.
    limits = Limits(timeout_s=REFERENCE_TIMEOUT_S, memory_mb=4096)
    ref = await tracer.run_io_tests(reference, IoTests(entry, [], [], atol, inputs, [], return_outputs=True), limits)
    failed = [i for i, t in enumerate(ref.tests) if t.verdict is not Verdict.PASSED]
    if failed:
        report.drop(
            task_id,
            "the reference solution fails on %d input(s), first #%d: %s"
            % (len(failed), failed[0], ref.tests[failed[0]].message),
        )
        return None
    expected = [t.output_json for t in ref.tests]
    slowest = max(t.duration_s for t in ref.tests)
    time_limit = max(MIN_TIME_LIMIT_S, TIME_LIMIT_FACTOR * slowest)

    # 2. The reference passes every graded input as graded (the oracle for find_zero).
    grading = IoTests(entry, [], [], atol, inputs, expected, oracle=oracle)
    check = await tracer.run_io_tests(reference, grading, Limits(timeout_s=max(time_limit, 5.0), memory_mb=4096))
    if check.verdict is not Verdict.PASSED:
        bad = next(i for i, t in enumerate(check.tests) if t.verdict is not Verdict.PASSED)
        report.drop(task_id, "the reference fails its own grading at input #%d: %s" % (bad, check.tests[bad].message))
        return None

    # 3. The buggy program fails at least one shown test.
    shown_run = await tracer.run_tests(buggy, shown, Limits(timeout_s=10.0), entry_points=[entry])
    if shown_run.verdict is Verdict.PASSED:
        report.drop(task_id, "the buggy program passes its shown tests")
        return None

    return TaskRecord(
        task_id=task_id,
        source=SOURCE,
        problem=pack["docstring"],
        buggy_program=buggy,
        entry_point=entry,
        shown_tests=shown,
        grading_tests=[],
        grading_io=IoGrading(inputs, expected, atol, oracle, round(time_limit, 3)),
        reference=reference,
        provenance={
            "buggy": "%s Python/%d buggy_solution (%s)"
            % (sources.origin["humanevalpack"], number, pack.get("bug_type", "")),
            "tests": "%s Python/%d test" % (sources.origin["humanevalpack"], number),
            "grading": "%s %s base_input+plus_input; expected outputs of its canonical_solution, run in the sandbox"
            % (sources.origin["humanevalplus"], task_id),
        },
    )


def summarize(tasks: list[TaskRecord]) -> dict[str, Any]:
    """Counts for ``next data stats``."""
    sources = Counter(t.source for t in tasks)
    return {
        "tasks": len(tasks),
        "sources": dict(sources),
        "shown_tests": sum(len(t.shown_tests) for t in tasks),
        "grading_tests": sum(len(t.grading_tests) for t in tasks),
        "grading_inputs": sum(len(t.grading_io.inputs_json) for t in tasks if t.grading_io),
        "with_reference": sum(t.reference is not None for t in tasks),
    }
