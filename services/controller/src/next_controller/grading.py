"""Verdicts on sampled fixes, through the tracer: shown tests for training, grading tests for evaluation."""

from __future__ import annotations

from typing import Any

from next_common.errors import UnavailableError
from next_controller.rows import Grade
from next_controller.services import Services
from next_tasks.parsing import parse_completion
from next_tasks.record import TaskRecord
from nextapi.tracer.types import IoTests, Limits, Verdict


async def run_shown_tests(services: Services, task: TaskRecord, program: str, timeout_s: float) -> tuple[bool, str]:
    """Algorithm 1, line 6: E(fix, T_j), every test shown in the prompt."""
    return await _statements(services, task, program, task.shown_tests, timeout_s)


async def run_grading_tests(services: Services, task: TaskRecord, program: str, timeout_s: float) -> tuple[bool, str]:
    """Evaluation: the task's grading statements and/or EvalPlus inputs (the shown tests if it has neither)."""
    statements = task.grading_tests or ([] if task.grading_io else task.shown_tests)
    if statements:
        passed, why = await _statements(services, task, program, statements, timeout_s)
        if not passed:
            return passed, why
    io = task.grading_io
    if io is not None:
        tests = IoTests(
            task.entry_point,
            [],
            [],
            io.atol,
            inputs_json=io.inputs_json,
            expected_json=io.expected_json,
            oracle=io.oracle,
        )
        async with services.tracer_slots:
            with services.clock.call():
                result = await services.tracer.run_io_tests(
                    program, tests, Limits(timeout_s=max(io.time_limit_s, 1.0), memory_mb=4096)
                )
        _no_sandbox_failure(result.verdict, task)
        return result.verdict is Verdict.PASSED, _first_failure(result.tests)
    return True, ""


async def _statements(
    services: Services, task: TaskRecord, program: str, tests: list[str], timeout_s: float
) -> tuple[bool, str]:
    async with services.tracer_slots:
        with services.clock.call():
            result = await services.tracer.run_tests(
                program, tests, Limits(timeout_s=timeout_s), entry_points=[task.entry_point]
            )
    _no_sandbox_failure(result.verdict, task)
    return result.verdict is Verdict.PASSED, _first_failure(result.tests)


def _no_sandbox_failure(verdict: Verdict, task: TaskRecord) -> None:
    """A sandbox that failed even after the tracer's retries is the infrastructure's failure, not
    the sample's: the stage stops (and resumes later) instead of recording a wrong answer."""
    if verdict is Verdict.SANDBOX_ERROR:
        raise UnavailableError("the tracer's sandbox failed on %s (after retries); rerun to resume" % task.task_id)


def _first_failure(tests: list[Any]) -> str:
    for i, t in enumerate(tests):
        if t.verdict is not Verdict.PASSED:
            return "test %d: %s %s" % (i, t.verdict.value, (t.message or "")[:200])
    return ""


async def grade_completion(
    services: Services, task: TaskRecord, text: str, timeout_s: float, for_training: bool
) -> Grade:
    """Parse a completion and test its fix: shown tests for training data, grading tests for evaluation."""
    parsed = parse_completion(text, task.entry_point)
    if parsed.program is None:
        return Grade(parsed.rationale, None, parsed.method, False, "unparsed: %s" % parsed.error)
    run = run_shown_tests if for_training else run_grading_tests
    passed, why = await run(services, task, parsed.program, timeout_s)
    return Grade(parsed.rationale, parsed.program, parsed.method, passed, why)
