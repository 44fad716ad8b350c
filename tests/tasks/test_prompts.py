"""Prompts: golden renderings (with/without trace, 0/3-shot), exemplar traces current, one renderer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from next_tasks.parsing import parse_completion
from next_tasks.prompts import (
    FIX_MARKER,
    PromptOptions,
    exemplars,
    first_failing_trace,
    render_messages,
    render_text,
    training_example,
)
from next_tasks.record import TaskRecord
from next_tracer.engine import TracerEngine
from next_tracer.inprocess import InProcessTracerClient

GOLDEN = Path(__file__).parent / "golden"
TASK = TaskRecord(
    task_id="golden/1",
    source="test",
    problem="Write a function to find the maximum of the minimums of pairs.",
    buggy_program="def max_of_mins(pairs):\n    best = 0\n    for a, b in pairs:\n        best = max(best, max(a, b))\n"
    "    return best\n",
    entry_point="max_of_mins",
    shown_tests=["assert max_of_mins([(1, 2), (5, 3)]) == 3", "assert max_of_mins([(4, 4)]) == 4"],
)
CHECK_TASK = TaskRecord(
    task_id="golden/2",
    source="test",
    problem="Return the largest element of the list.",
    buggy_program="def max_element(l: list):\n    m = l[0]\n    for e in l:\n        if e < m:\n            m = e\n"
    "    return m\n",
    entry_point="max_element",
    shown_tests=[
        "def check(candidate):\n    assert candidate([1, 2, 3]) == 3\n    assert candidate([5, 3]) == 5\n\n"
        "check(max_element)\n"
    ],
)
VARIANTS = {
    "trace-0shot": PromptOptions(with_trace=True, shots=0),
    "notrace-0shot": PromptOptions(with_trace=False, shots=0),
    "trace-3shot": PromptOptions(with_trace=True, shots=3),
    "notrace-3shot": PromptOptions(with_trace=False, shots=3),
}


@pytest.mark.parametrize(("task", "variant"), [(t, v) for t in (TASK, CHECK_TASK) for v in sorted(VARIANTS)])
async def test_golden_prompts(engine: TracerEngine, task: TaskRecord, variant: str) -> None:
    options = VARIANTS[variant]
    trace = await first_failing_trace(task, InProcessTracerClient(engine=engine)) if options.with_trace else None
    text = render_text(render_messages(task, trace, options))
    golden = GOLDEN / ("%s-%s.txt" % (task.task_id.replace("/", "-"), variant))
    if os.environ.get("NEXT_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


async def test_exemplar_traces_are_what_the_tracer_prints(engine: TracerEngine) -> None:
    client = InProcessTracerClient(engine=engine)
    for ex in exemplars():
        task = TaskRecord("ex", "exemplar", ex.problem, ex.buggy, ex.entry_point, ex.tests)
        assert await first_failing_trace(task, client) == ex.trace
        assert (await client.run_tests(ex.fixed, ex.tests)).verdict.value == "PASSED"
        assert ex.rationale.endswith(FIX_MARKER) and ex.rationale_no_trace.endswith(FIX_MARKER)


def test_training_prompt_is_the_sampling_prompt() -> None:
    options = PromptOptions(with_trace=False, shots=0)
    prompt, completion = training_example(
        TASK, None, options, "It takes the max.", "def max_of_mins(p):\n    return 0\n"
    )
    assert prompt == render_text(render_messages(TASK, None, options))
    parsed = parse_completion(completion, "max_of_mins")
    assert parsed.program == "def max_of_mins(p):\n    return 0\n" and parsed.rationale.endswith(FIX_MARKER)


def test_shots_must_be_0_or_3() -> None:
    with pytest.raises(ValueError, match="shots must be 0 or 3"):
        render_messages(TASK, None, PromptOptions(shots=2))
