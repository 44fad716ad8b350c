"""Mbpp-R: MBPP problems paired with buggy programs, from pluggable bug sources.

Splits follow MBPP's own: train from its train, validation and prompt problems (task ids
601-974, 511-600, 1-10), dev from its test problems (11-510), so no problem is in both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_common.plugins.manager import Registry, collect
from next_tasks.mutation import mutants, normalized
from next_tasks.parsing import parse_completion
from next_tasks.record import TaskRecord
from next_tasks.sources import MBPP, SourceError, read_jsonl
from nextapi.tracer.client import TracerClient
from nextapi.tracer.types import Limits, Verdict

log = logging.getLogger(__name__)

KEEP = {Verdict.FAILED, Verdict.ERROR}  # a bug that runs: a wrong answer or an exception
REFERENCE_TIMEOUT_S = 30.0  # MBPP task 123 alone takes ~6 s on this machine (data README)
MIN_TIME_LIMIT_S = 1.0
TIME_LIMIT_FACTOR = 4.0  # EvalPlus: max(T_base, k * T_ref)


@dataclass(frozen=True)
class MbppProblem:
    task_id: int
    text: str
    code: str
    tests: list[str]
    entry_point: str

    @property
    def split(self) -> str:
        return "dev" if 11 <= self.task_id <= 510 else "train"


def _entry_point(code: str, tests: list[str]) -> str:
    defined = re.findall(r"^def\s+(\w+)\s*\(", code, re.MULTILINE)
    for name in re.findall(r"(\w+)\s*\(", " ".join(tests)):
        if name in defined:
            return str(name)
    return str(defined[-1]) if defined else ""


def load_mbpp(source: str | Path | None) -> list[MbppProblem]:
    """MBPP's 974 problems from a local copy laid out like ``shared/data``, or the hub when ``source`` is None."""
    fields = ("task_id", "text", "code", "test_list", "test_setup_code")
    if source is not None:
        records = read_jsonl(Path(source) / MBPP, fields)
    else:
        try:
            from datasets import load_dataset
        except ImportError:
            raise SourceError(
                "reading MBPP from the hub needs 'datasets' (pip install next-tasks[hub]), or pass --source DIR"
            ) from None
        records = [
            dict(r)
            for split in ("train", "validation", "test", "prompt")
            for r in load_dataset("google-research-datasets/mbpp", "full", split=split)
        ]
    problems = []
    for r in records:
        setup = r["test_setup_code"].replace("\r\n", "\n").strip()
        tests = [(setup + "\n" + t) if setup else t for t in r["test_list"]]
        code = r["code"].replace("\r\n", "\n").rstrip() + "\n"
        entry = _entry_point(code, tests)
        if not entry:
            raise SourceError("%s: MBPP task %s defines no function the tests call" % (MBPP, r["task_id"]))
        problems.append(MbppProblem(int(r["task_id"]), r["text"], code, tests, entry))
    return problems


class BugSource(Protocol):
    async def candidates(self, problem: MbppProblem, seed: int) -> list[tuple[str, str]]: ...


class MutationBugs:
    """Semantic mutations of the reference solution (works offline, no model)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.limit = int(options.get("max_candidates", 40))

    async def candidates(self, problem: MbppProblem, seed: int) -> list[tuple[str, str]]:
        return mutants(problem.code, seed=seed + problem.task_id, limit=self.limit)


class RecordedBugs:
    """Programs sampled from a model (the paper's method), read from recorded completions.

    The file is JSONL with ``{"task_id": N, "completion": TEXT}`` per sample; until the
    sampler service exists, this is how sampled bugs come in.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        path = options.get("completions")
        if not path:
            raise SourceError("the 'sampled' bug source needs --completions FILE (recorded model samples)")
        self.by_task: dict[int, list[str]] = {}
        for record in read_jsonl(Path(path), ("task_id", "completion")):
            self.by_task.setdefault(int(record["task_id"]), []).append(str(record["completion"]))

    async def candidates(self, problem: MbppProblem, seed: int) -> list[tuple[str, str]]:
        out = []
        for text in self.by_task.get(problem.task_id, []):
            parsed = parse_completion(text, problem.entry_point)
            if parsed.program is not None:
                out.append(("sampled", parsed.program))
        return out


@hookimpl
def next_register_bug_sources(register: RegisterFn) -> None:
    register("mutation", MutationBugs)
    register("sampled", RecordedBugs)


def bug_sources(extra_plugins: tuple[object, ...] = (), load_entry_points: bool = True) -> Registry:
    import next_tasks.mbpp as builtin

    return collect("bug source", "next_register_bug_sources", [builtin], extra_plugins, load_entry_points)


@dataclass
class MbppReport:
    problems: int = 0
    tasks: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    problems_with_bugs: dict[str, int] = field(default_factory=dict)  # "0", "1", ... ">=3"
    dropped_candidates: dict[str, int] = field(default_factory=dict)
    dropped_problems: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "problems": self.problems,
            "splits": self.splits,
            "problems_with_bugs": self.problems_with_bugs,
            "dropped_candidates": self.dropped_candidates,
            "dropped_problems": {k: len(v) for k, v in self.dropped_problems.items()},
            "dropped_problem_ids": self.dropped_problems,
        }


async def build_mbpp_r(
    problems: list[MbppProblem],
    source: BugSource,
    tracer: TracerClient,
    per_problem: int = 5,
    seed: int = 0,
    concurrency: int = 8,
    source_name: str = "mutation",
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, list[TaskRecord]], MbppReport]:
    report = MbppReport(problems=len(problems))
    gate = asyncio.Semaphore(concurrency)

    def count(reason: str) -> None:
        report.dropped_candidates[reason] = report.dropped_candidates.get(reason, 0) + 1

    async def one(problem: MbppProblem) -> list[TaskRecord]:
        async with gate:
            ref_limits = Limits(timeout_s=REFERENCE_TIMEOUT_S)
            ref = await tracer.run_tests(problem.code, problem.tests, ref_limits, entry_points=[problem.entry_point])
            if ref.verdict is not Verdict.PASSED:
                objects = any(
                    "only plain builtin data" in t.message or "program objects are not plain data" in t.message
                    for t in ref.tests
                )
                reason = "tests use program objects (not plain data)" if objects else "reference fails its tests"
                report.dropped_problems.setdefault(reason, []).append(problem.task_id)
                return []
            # Per-test limit scaled from the reference's own run time, as EvalPlus does.
            slowest = max(t.duration_s for t in ref.tests)
            limits = Limits(timeout_s=max(MIN_TIME_LIMIT_S, TIME_LIMIT_FACTOR * slowest))
            kept: list[TaskRecord] = []
            seen: set[str] = set()
            for kind, program in await source.candidates(problem, seed):
                if len(kept) >= per_problem:
                    break
                key = normalized(program)
                if key is None:
                    count("does not parse")
                    continue
                if key in seen:
                    count("duplicate")
                    continue
                seen.add(key)
                run = await tracer.run_tests(program, problem.tests, limits, entry_points=[problem.entry_point])
                if run.verdict is Verdict.PASSED:
                    count("passes every test (equivalent on the tests)")
                    continue
                if not any(t.verdict in KEEP for t in run.tests):
                    count("fails only by %s" % run.verdict.value.lower())
                    continue
                kept.append(
                    TaskRecord(
                        task_id="mbpp-r/%d/%d" % (problem.task_id, len(kept)),
                        source="mbpp-r/%s" % source_name,
                        problem=problem.text,
                        buggy_program=program,
                        entry_point=problem.entry_point,
                        shown_tests=problem.tests,
                        grading_tests=problem.tests,
                        reference=problem.code,
                        provenance={
                            "problem": "MBPP task %d (%s split)" % (problem.task_id, problem.split),
                            "bug": "%s: %s" % (source_name, kind),
                            "seed": str(seed),
                        },
                    )
                )
            return kept

    async def counted(problem: MbppProblem) -> list[TaskRecord]:
        kept = await one(problem)
        if progress is not None:  # every problem, dropped ones too, so a bar reaches its total
            progress(problem.task_id)
        return kept

    results = await asyncio.gather(*(counted(p) for p in problems))
    splits: dict[str, list[TaskRecord]] = {"train": [], "dev": []}
    for problem, kept in zip(problems, results, strict=True):
        splits[problem.split].extend(kept)
        bucket = ">=3" if len(kept) >= 3 else str(len(kept))
        report.problems_with_bugs[bucket] = report.problems_with_bugs.get(bucket, 0) + 1
    report.splits = {name: len(tasks) for name, tasks in splits.items()}
    report.tasks = sum(report.splits.values())
    if not splits["train"] or not splits["dev"]:
        empty = [name for name, tasks in splits.items() if not tasks]
        log.warning("empty split(s): %s", ", ".join(empty))
    return splits, report


def dump_report(path: Path, report: MbppReport) -> None:
    path.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
