"""Grading at EvalPlus scale: the 164 HumanEval+ canonical solutions on all their inputs
(base + plus), through the sandboxed tracer (one sandboxed execution per program, a time limit
per input) against EvalPlus's own unsandboxed ``evalplus.eval.untrusted_check``, same work and
same number of workers, in one run. Expected outputs and reference times come from running the
canonical solutions in this process first (trusted code; not timed).

Usage: .venv/bin/python benchmarks/evalplus_throughput.py [--workers N] [--limit K] [--repeat R]
The last line is ``ratio <sandboxed/unsandboxed>`` (throughput ratio of the median times over R
interleaved repeats; >= 1.0 is the target, all 164 passing in every repeat).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gzip
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
PLUS = DATA / "evalplus" / "humanevalplus-v0.1.10" / "HumanEvalPlus.jsonl.gz"


def load(limit: int) -> list[dict[str, Any]]:
    with gzip.open(PLUS, "rt") as fh:
        tasks = [json.loads(line) for line in fh][:limit]
    for task in tasks:
        task["code"] = task["prompt"] + task["canonical_solution"]
        task["inputs"] = task["base_input"] + task["plus_input"]
        namespace: dict[str, Any] = {}
        exec(task["code"], namespace)
        fn = namespace[task["entry_point"]]
        task["expected"], task["ref_time"] = [], []
        for inp in task["inputs"]:
            started = time.perf_counter()
            task["expected"].append(fn(*copy.deepcopy(inp)))
            task["ref_time"].append(time.perf_counter() - started)
    return tasks


def reference(tasks: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    from evalplus.eval import untrusted_check

    def one(t: dict[str, Any]) -> bool:
        status, _ = untrusted_check(
            "humaneval",
            t["code"],
            t["inputs"],
            t["entry_point"],
            t["expected"],
            float(t["atol"]),
            t["ref_time"],
            fast_check=False,
        )
        return bool(status == "pass")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        passed = sum(pool.map(one, tasks))
    return time.perf_counter() - started, passed


async def sandboxed(tasks: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    from next_tracer.engine import TracerEngine
    from next_tracer.formats.registry import FormatRegistry
    from next_tracer.server import start_server
    from next_tracer.settings import TracerSettings
    from nextapi.tracer.client import GrpcTracerClient
    from nextapi.tracer.types import IoTests, Limits, Verdict

    settings = TracerSettings(max_concurrency=workers, port=0, host="127.0.0.1")
    service, _ = await start_server(settings, TracerEngine(settings, FormatRegistry(load_entry_points=False)))
    limits = Limits(timeout_s=5, memory_mb=4096)
    try:
        client = GrpcTracerClient("127.0.0.1:%d" % service.port)
        ios = [IoTests(t["entry_point"], t["inputs"], t["expected"], float(t["atol"])) for t in tasks]
        # Requests are serialized before timing, as the reference gets its data in memory.
        prepared = [client.io_requests(t["code"], io, limits) for t, io in zip(tasks, ios, strict=True)]
        started = time.perf_counter()
        results = await asyncio.gather(*(client.run_io_requests(reqs) for reqs in prepared))
        elapsed = time.perf_counter() - started
        await client.close()
    finally:
        await service.stop(0)
    failed = [t["task_id"] for t, r in zip(tasks, results, strict=True) if r.verdict is not Verdict.PASSED]
    if failed:
        print("sandboxed: not passed:", failed[:10])
    return elapsed, len(tasks) - len(failed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--limit", type=int, default=164)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tasks = load(args.limit)
    n_inputs = sum(len(t["inputs"]) for t in tasks)
    ref_runs: list[tuple[float, int]] = []
    our_runs: list[tuple[float, int]] = []
    for i in range(args.repeat):
        # Interleaved, in alternating order, so a drift in the host's load hits both alike.
        if i % 2:
            our_runs.append(asyncio.run(sandboxed(tasks, args.workers)))
        ref_runs.append(reference(tasks, args.workers))
        if not i % 2:
            our_runs.append(asyncio.run(sandboxed(tasks, args.workers)))
        print("repeat %d: reference %.2fs, ours %.2fs" % (i + 1, ref_runs[-1][0], our_runs[-1][0]), flush=True)
    ref = statistics.median(t for t, _ in ref_runs)
    ours = statistics.median(t for t, _ in our_runs)
    ok_ref, ok_ours = min(ok for _, ok in ref_runs), min(ok for _, ok in our_runs)
    print("programs %d, inputs %d, workers %d, repeats %d (median)" % (len(tasks), n_inputs, args.workers, args.repeat))
    print("evalplus untrusted_check (unsandboxed): %.2fs  %.0f inputs/s  passed %d" % (ref, n_inputs / ref, ok_ref))
    print("next-tracer io RunTests (nsjail, gRPC):  %.2fs  %.0f inputs/s  passed %d" % (ours, n_inputs / ours, ok_ours))
    print("ratio %.2f" % (ref / ours))


if __name__ == "__main__":
    main()
