"""Building HeFix+ (164 tasks, expected outputs for all 124,253 HumanEval+ inputs) through the
sandboxed tracer: every task's inputs go in one batched io execution, tasks run concurrently.

Usage: .venv/bin/python benchmarks/hefix_build.py [--concurrency N]
Prints tasks/s and the total time. The reference measured in the same run is EvalPlus's own
unsandboxed evaluator computing nothing but the same canonical solutions' outputs in process.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def reference_outputs() -> float:
    """Plain in-process computation of every canonical solution's outputs (no sandbox, no checks)."""
    path = DATA / "evalplus" / "humanevalplus-v0.1.10" / "HumanEvalPlus.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        tasks = [json.loads(line) for line in fh]
    started = time.perf_counter()
    for task in tasks:
        namespace: dict[str, object] = {}
        exec(task["prompt"] + task["canonical_solution"], namespace)
        fn = namespace[task["entry_point"]]
        for args in task["base_input"] + task["plus_input"]:
            fn(*args)  # type: ignore[operator]
    return time.perf_counter() - started


async def build(concurrency: int) -> tuple[float, int, int]:
    from next_tasks.hefix import build_hefix_plus
    from next_tasks.sources import load_humaneval_local
    from next_tracer.inprocess import InProcessTracerClient

    sources = load_humaneval_local(DATA)
    client = InProcessTracerClient()
    started = time.perf_counter()
    tasks, report = await build_hefix_plus(sources, client, concurrency)
    return time.perf_counter() - started, len(tasks), report.inputs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    ref = reference_outputs()
    elapsed, tasks, inputs = asyncio.run(build(args.concurrency))
    print(
        "HeFix+ build: %d tasks, %d inputs, %.1fs, %.2f tasks/s (outputs, grading check, buggy check)"
        % (tasks, inputs, elapsed, tasks / elapsed)
    )
    print("reference: computing the same outputs in process, unsandboxed, single process: %.1fs" % ref)
    print("ratio %.2f" % (ref / elapsed))


if __name__ == "__main__":
    main()
