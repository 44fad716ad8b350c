"""A small run for the controller's tests: hand-made repair tasks, a tiny model, and a replay file
holding the completions for every prompt the run sends (rendered exactly as the run renders them)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from next_tasks.record import TaskRecord, save_tasks

TASKS = [
    (
        "add",
        "def add(a, b):\n    return a - b\n",
        "def add(a, b):\n    return a + b\n",
        ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
    ),
    (
        "double",
        "def double(x):\n    return x + 2\n",
        "def double(x):\n    return x * 2\n",
        ["assert double(3) == 6", "assert double(0) == 0"],
    ),
    (
        "last",
        "def last(xs):\n    return xs[0]\n",
        "def last(xs):\n    return xs[-1]\n",
        ["assert last([1, 2, 3]) == 3"],
    ),
    (
        "is_even",
        "def is_even(n):\n    return n % 2 == 1\n",
        "def is_even(n):\n    return n % 2 == 0\n",
        ["assert is_even(4)", "assert not is_even(3)"],
    ),
    (
        "count",
        "def count(xs):\n    return len(xs) - 1\n",
        "def count(xs):\n    return len(xs)\n",
        ["assert count([5, 6]) == 2"],
    ),
    (
        "neg",
        "def neg(x):\n    return x\n",
        "def neg(x):\n    return -x\n",
        ["assert neg(2) == -2", "assert neg(0) == 0"],
    ),
]


def task(name: str, buggy: str, fixed: str, tests: list[str], split: str) -> TaskRecord:
    return TaskRecord(
        task_id="%s/%s" % (split, name),
        source="test",
        problem="Write %s." % name,
        buggy_program=buggy,
        entry_point=name,
        shown_tests=tests,
        grading_tests=tests,
        reference=fixed,
    )


def answer(t: TaskRecord, correct: bool, j: int, adapter: str = "") -> str:
    program = t.reference if correct else t.buggy_program
    label = "abcdefghij"[j]  # no digits: the rationale cites no trace value
    model = {"": "base", "round-1": "first", "round-2": "second"}[adapter]  # models differ, canaries see it
    return (
        "The program returns the wrong value (sample %s, %s model).\nHere is a fixed version:\n```python\n%s```\n"
        % (
            label,
            model,
            program,
        )
    )


def correct_for(adapter: str, j: int) -> bool:
    """Later models are better: the base fixes 1 in 4, round-1 2 in 4, round-2 3 in 4."""
    return {"": j % 4 == 0, "round-1": j % 2 == 0, "round-2": j % 4 != 3}[adapter]


async def record_replay(config: dict[str, Any], tokenizer: Any) -> list[dict[str, Any]]:
    from next_controller.evaluation import proxy_input
    from next_controller.pipeline import render_prompt
    from next_tasks.parsing import parse_completion
    from next_tasks.prompts import first_failing_trace
    from next_tracer.inprocess import InProcessTracerClient

    tracer = InProcessTracerClient()
    from next_tasks.record import load_tasks

    train, dev = load_tasks(config["data"]["train"]), load_tasks(config["data"]["dev"])
    traces = {t.task_id: await first_failing_trace(t, tracer) for t in train + dev}
    await tracer.close()
    rows = []
    for adapter in ("", "round-1", "round-2"):
        for t in train + dev:
            for with_trace in (True, False):
                prompt = render_prompt(t, traces[t.task_id], with_trace, 0, "next-inline", tokenizer)
                for j in range(8):
                    rows.append(
                        {
                            "prompt": prompt,
                            "sample_index": j,
                            "adapter": adapter,
                            "text": answer(t, correct_for(adapter, j), j, adapter),
                        }
                    )
                    if j == 0:  # the proxy model (the base) reads sample 0's rationale
                        rationale = parse_completion(
                            answer(t, correct_for(adapter, 0), 0, adapter), t.entry_point
                        ).rationale
                        proxy = proxy_input(t, rationale, tokenizer)
                        rows += [
                            {"prompt": proxy, "sample_index": k, "adapter": "", "text": answer(t, k % 2 == 0, k)}
                            for k in range(2)
                        ]
    return rows


def make_run(root: Path, model_dir: Path, rounds: int = 2) -> Path:
    """Task files, a replay file and run.yaml under ``root``; returns the config path."""
    from transformers import AutoTokenizer

    save_tasks(root / "train.jsonl", [task(*t, split="train") for t in TASKS[:4]])
    save_tasks(root / "dev.jsonl", [task(*t, split="dev") for t in TASKS[4:]])
    config: dict[str, Any] = {
        "run_dir": str(root / "run"),
        "base_model": str(model_dir),
        "rounds": rounds,
        "services": {
            "mode": "embedded",
            "sampler_backend": "replay",
            "replay_file": str(root / "replay.jsonl"),
            "adapter_loading": "preloaded",
            "tracer_concurrency": 4,
        },
        "data": {"train": str(root / "train.jsonl"), "dev": str(root / "dev.jsonl")},
        "sampling": {"samples_per_problem": 4, "shots": 0},
        "hard_problems": {"enabled": True, "samples": 4, "threshold": 0.5},
        "filters": {"names": ["passes-all-tests", "no-test-tampering", "dedupe"]},
        "training": {
            "optim": {"max_steps": 4, "batch_size": 2, "learning_rate": 0.01},
            "save_steps": 2,
            "max_length": 512,
        },
        "evaluation": {"ks": [1, 2], "samples": 4, "proxy": {"enabled": True, "samples": 2}},
    }
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = asyncio.run(record_replay(config, tokenizer))
    (root / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.trainer.conftest import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("controller-model"))
