"""Mutation bugs and the Mbpp-R builder (on MBPP from shared/data)."""

from __future__ import annotations

import ast

import pytest

from next_common.plugins import hookimpl
from next_tasks.mbpp import MutationBugs, bug_sources, build_mbpp_r, load_mbpp
from next_tasks.mutation import MUTATION_KINDS, mutants
from next_tracer.engine import TracerEngine
from next_tracer.inprocess import InProcessTracerClient
from nextapi.tracer.types import Verdict
from tests.conftest import DATA

SOURCE = (
    "def f(xs, k):\n    total = 0\n    for i in range(len(xs)):\n        if xs[i] > k and not i % 2:\n"
    "            total += xs[i]\n        else:\n            total -= 1\n    return total\n"
)


def test_mutants_are_distinct_single_edits_of_every_kind() -> None:
    found = mutants(SOURCE, seed=3)
    programs = [p for _, p in found]
    assert len(set(map(lambda p: ast.dump(ast.parse(p)), programs))) == len(programs)
    assert ast.dump(ast.parse(SOURCE)) not in {ast.dump(ast.parse(p)) for p in programs}
    assert {k for k, _ in found} == set(MUTATION_KINDS)
    assert [k for k, _ in found[:4]] != [found[0][0]] * 4  # round-robin over kinds
    assert mutants(SOURCE, seed=3) == found and mutants(SOURCE, seed=4) != found
    assert mutants("def broken(:\n") == []


def test_splits_follow_mbpp() -> None:
    problems = {p.task_id: p for p in load_mbpp(DATA)}
    assert len(problems) == 974
    assert {problems[i].split for i in (1, 10, 511, 600, 601, 974)} == {"train"}
    assert {problems[i].split for i in (11, 510)} == {"dev"}
    assert problems[126].entry_point == "sum"


@pytest.mark.slow
async def test_builder_on_a_slice_of_mbpp(engine: TracerEngine) -> None:
    problems = [p for p in load_mbpp(DATA) if p.task_id in range(1, 31) or p.task_id in (40, 126, 367)]
    splits, report = await build_mbpp_r(problems, MutationBugs({}), InProcessTracerClient(engine=engine), per_problem=3)
    assert report.dropped_problems == {"tests use program objects (not plain data)": [367]}
    assert report.problems_with_bugs.get(">=3", 0) >= 0.8 * len(problems)
    assert (
        report.splits == {"train": len(splits["train"]), "dev": len(splits["dev"])}
        and splits["train"]
        and splits["dev"]
    )
    client = InProcessTracerClient(engine=engine)
    for task in splits["dev"][:10]:
        run = await client.run_tests(task.buggy_program, task.shown_tests, entry_points=[task.entry_point])
        assert run.verdict is not Verdict.PASSED
    assert sum(report.dropped_candidates.values()) > 0  # equivalent mutants are counted, not silently skipped


def test_bug_sources_are_plugins() -> None:
    class Constant:
        def __init__(self, options: dict[str, object]) -> None:
            pass

        async def candidates(self, problem: object, seed: int) -> list[tuple[str, str]]:
            return [("constant", "def f():\n    return 0\n")]

    class Plugin:
        @hookimpl
        def next_register_bug_sources(self, register):  # type: ignore[no-untyped-def]
            register("constant", Constant)

    registry = bug_sources((Plugin(),), load_entry_points=False)
    assert registry.names() == ["constant", "mutation", "sampled"]


@pytest.mark.slow
async def test_full_mbpp_mutation_build_meets_the_bar(engine: TracerEngine) -> None:
    # Done-when of the tasks issue: >= 3 failing, deduplicated bugs for >= 80% of MBPP's problems.
    problems = load_mbpp(DATA)
    splits, report = await build_mbpp_r(problems, MutationBugs({}), InProcessTracerClient(engine=engine), per_problem=3)
    assert report.problems_with_bugs[">=3"] >= 0.8 * len(problems)
    assert sum(len(ids) for ids in report.dropped_problems.values()) + sum(report.problems_with_bugs.values()) >= 974
    dev_ids = {int(t.task_id.split("/")[1]) for t in splits["dev"]}
    train_ids = {int(t.task_id.split("/")[1]) for t in splits["train"]}
    assert not dev_ids & train_ids and min(dev_ids) >= 11 and max(dev_ids) <= 510


async def test_sampled_bugs_from_recorded_completions(engine: TracerEngine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from next_tasks.mbpp import RecordedBugs

    problems = [p for p in load_mbpp(DATA) if p.task_id == 2]
    wrong = "Here is my solution:\n```python\ndef similar_elements(a, b):\n    return tuple(a)\n```"
    right = "```python\n" + problems[0].code + "```"
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps({"task_id": 2, "completion": c}) + "\n" for c in (wrong, right, "no code")))
    splits, report = await build_mbpp_r(
        problems, RecordedBugs({"completions": str(path)}), InProcessTracerClient(engine=engine), source_name="sampled"
    )
    (task,) = splits["train"] + splits["dev"]
    assert task.buggy_program.startswith("def similar_elements(a, b):\n    return tuple(a)")
    assert task.source == "mbpp-r/sampled"
    assert report.dropped_candidates == {"passes every test (equivalent on the tests)": 1}
