"""Evaluation grading through the tracer: statements, and EvalPlus-style inputs with expected outputs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from next_common.errors import UnavailableError
from next_controller.grading import grade_completion, run_grading_tests
from next_controller.services import BusyClock
from next_tasks.record import IoGrading, TaskRecord
from next_tracer.inprocess import InProcessTracerClient
from nextapi.tracer import plain
from nextapi.tracer import types as tracer_types
from nextapi.tracer.types import RunResult, Verdict


@pytest.fixture
async def services() -> AsyncIterator[SimpleNamespace]:
    tracer = InProcessTracerClient()
    try:
        yield SimpleNamespace(tracer=tracer, tracer_slots=asyncio.Semaphore(4), clock=BusyClock())
    finally:
        await tracer.close()


def io_task() -> TaskRecord:
    inputs = [[1, 2], [3, 4], [-1, 1], [10**6, 1]]
    return TaskRecord(
        task_id="plus/0",
        source="test",
        problem="Add two numbers.",
        buggy_program="def add(a, b):\n    return a - b\n",
        entry_point="add",
        shown_tests=["assert add(1, 2) == 3"],
        grading_io=IoGrading(
            inputs_json=[plain.dumps(args) for args in inputs],
            expected_json=[plain.dumps(sum(args)) for args in inputs],
        ),
    )


async def test_io_grading_runs_every_input(services: SimpleNamespace) -> None:
    task = io_task()
    assert await run_grading_tests(services, task, "def add(a, b):\n    return a + b\n", 5.0) == (True, "")  # type: ignore[arg-type]
    # passes the shown test but not the hidden inputs
    passed, why = await run_grading_tests(
        services, task, "def add(a, b):\n    return 3 if a == 1 else a + b + 1\n", 5.0
    )  # type: ignore[arg-type]
    assert not passed and why.startswith("test 1:")
    assert services.clock.busy_s > 0


async def test_a_completion_is_parsed_then_tested(services: SimpleNamespace) -> None:
    task = io_task()
    text = "It subtracts.\nHere is a fixed version:\n```python\ndef add(a, b):\n    return a + b\n```\n"
    grade = await grade_completion(services, task, text, 5.0, for_training=True)  # type: ignore[arg-type]
    assert grade.passed and grade.parse == "fenced" and grade.rationale.startswith("It subtracts.")
    grade = await grade_completion(services, task, "no code here", 5.0, for_training=False)  # type: ignore[arg-type]
    assert not grade.passed and grade.program is None and grade.why.startswith("unparsed:")


class BrokenSandboxTracer:
    """Stand-in for a tracer whose sandbox keeps failing (after its own retries)."""

    async def run_tests(self, *args: object, **kwargs: object) -> RunResult:
        return RunResult(
            Verdict.SANDBOX_ERROR, [tracer_types.TestOutcome(Verdict.SANDBOX_ERROR, "sandbox ended early")]
        )

    async def run_io_tests(self, *args: object, **kwargs: object) -> RunResult:
        return await self.run_tests()


@pytest.mark.parametrize("for_training", [True, False])
async def test_a_failed_sandbox_is_never_recorded_as_a_wrong_answer(for_training: bool) -> None:
    services = SimpleNamespace(tracer=BrokenSandboxTracer(), tracer_slots=asyncio.Semaphore(1), clock=BusyClock())
    text = "```python\ndef add(a, b):\n    return a + b\n```\n"
    with pytest.raises(UnavailableError, match="sandbox failed on plus/0"):
        await grade_completion(services, io_task(), text, 5.0, for_training=for_training)  # type: ignore[arg-type]
