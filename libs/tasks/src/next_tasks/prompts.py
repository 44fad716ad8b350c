"""Prompts: problem + buggy program + tests (+ the NExT trace of the first failing test).

One renderer serves training and sampling, so a prompt is bit-identical in both. Chat
models get messages (apply the tokenizer's chat template to them); base models get the
same turns as plain text. 0-shot prompts are for fine-tuned models, 3-shot ones (with the
team's exemplars in ``data/exemplars.json``) for base models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol

from next_tasks.record import TaskRecord
from nextapi.tracer.client import TracerClient
from nextapi.tracer.types import Limits, TraceOptions, Verdict

FIX_MARKER = "Here is a fixed version:"
INSTRUCTION = "Fix the buggy Python program below so that it solves the problem and passes the tests."
ASK_WITH_TRACE = (
    "Explain the bug step by step: restate what the program should do, walk through the execution citing "
    'values from the trace against the expected output, then write "%s" followed by the whole fixed '
    "program in one ```python block." % FIX_MARKER
)
ASK_WITHOUT_TRACE = (
    "Explain the bug step by step: restate what the program should do, walk through what it does on a failing "
    'test against the expected output, then write "%s" followed by the whole fixed program in one '
    "```python block." % FIX_MARKER
)
ANSWER_CUE = "### Answer\n"


@dataclass(frozen=True)
class PromptOptions:
    with_trace: bool = True
    shots: int = 0  # 0 (fine-tuned models) or 3 (base models)
    trace_format: str = "next-inline"


@dataclass(frozen=True)
class Exemplar:
    problem: str
    buggy: str
    tests: list[str]
    trace: str
    rationale: str
    rationale_no_trace: str  # the same reasoning without citing trace steps, for prompts without traces
    fixed: str
    entry_point: str


@cache
def exemplars() -> tuple[Exemplar, ...]:
    raw = json.loads(resources.files("next_tasks").joinpath("data/exemplars.json").read_text(encoding="utf-8"))
    return tuple(Exemplar(**{k: e[k] for k in Exemplar.__dataclass_fields__}) for e in raw)


def _fenced(code: str) -> str:
    return "```python\n%s\n```" % code.rstrip("\n")


def render_request(problem: str, buggy: str, tests: list[str], trace: str | None) -> str:
    """The user turn: what the model is asked, with or without the trace."""
    parts = [INSTRUCTION, "### Problem\n" + problem.strip()]
    if trace is not None:
        parts.append(
            "### Buggy program, with the execution trace of the first failing test as comments\n"
            "Each comment lists the states that line produced, numbered in execution order.\n" + _fenced(trace)
        )
    else:
        parts.append("### Buggy program\n" + _fenced(buggy))
    parts.append("### Tests\n" + _fenced("\n".join(t.rstrip("\n") for t in tests)))
    parts.append(ASK_WITH_TRACE if trace is not None else ASK_WITHOUT_TRACE)
    return "\n\n".join(parts)


def render_answer(rationale: str, program: str) -> str:
    """The assistant turn (the training target): rationale ending with the marker, then the program."""
    rationale = rationale.rstrip()
    if not rationale.endswith(FIX_MARKER):
        rationale = rationale + "\n" + FIX_MARKER
    return "%s\n%s" % (rationale, _fenced(program))


def render_messages(task: TaskRecord, trace: str | None, options: PromptOptions) -> list[dict[str, str]]:
    """Chat messages for ``task``: the exemplars' turns for 3-shot, then the task's request."""
    if options.shots not in (0, 3):
        raise ValueError("shots must be 0 or 3, not %d" % options.shots)
    messages: list[dict[str, str]] = []
    for ex in exemplars()[: options.shots]:
        shown = ex.trace if options.with_trace else None
        messages.append({"role": "user", "content": render_request(ex.problem, ex.buggy, ex.tests, shown)})
        rationale = ex.rationale if options.with_trace else ex.rationale_no_trace
        messages.append({"role": "assistant", "content": render_answer(rationale, ex.fixed)})
    shown_trace = trace if options.with_trace else None
    request = render_request(task.problem, task.buggy_program, task.shown_tests, shown_trace)
    messages.append({"role": "user", "content": request})
    return messages


def render_text(messages: list[dict[str, str]]) -> str:
    """The same turns as plain text, for base models without a chat template."""
    out = []
    for message in messages:
        if message["role"] == "user":
            out.append(message["content"] + "\n\n" + ANSWER_CUE)
        else:
            out.append(message["content"] + "\n\n\n")
    return "".join(out)


class ChatTokenizer(Protocol):
    chat_template: Any

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def to_model_input(messages: list[dict[str, str]], tokenizer: ChatTokenizer | None = None) -> str:
    """The exact string the model reads: the tokenizer's chat template if it has one, else plain text."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text)
    return render_text(messages)


def training_example(
    task: TaskRecord,
    trace: str | None,
    options: PromptOptions,
    rationale: str,
    program: str,
    tokenizer: ChatTokenizer | None = None,
) -> tuple[str, str]:
    """(prompt, completion) for fine-tuning: the prompt is exactly what sampling sends to the model."""
    return to_model_input(render_messages(task, trace, options), tokenizer), render_answer(rationale, program)


async def first_failing_trace(
    task: TaskRecord, tracer: TracerClient, trace_format: str = "next-inline", timeout_s: float = 10.0
) -> str | None:
    """The trace of the first shown test the buggy program fails (None if it passes them all)."""
    limits = Limits(timeout_s=timeout_s)
    run = await tracer.run_tests(task.buggy_program, task.shown_tests, limits, entry_points=[task.entry_point])
    for test, outcome in zip(task.shown_tests, run.tests, strict=True):
        if outcome.verdict is not Verdict.PASSED:
            traced = await tracer.trace(
                task.buggy_program, test, TraceOptions(format=trace_format), limits, entry_points=[task.entry_point]
            )
            return traced.rendered
    return None
