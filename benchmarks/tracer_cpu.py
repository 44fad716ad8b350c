"""Where a sandboxed job's CPU goes: per process role, in ms of CPU per job, over HumanEval's 164
canonical solutions run one at a time through one pre-warmed jail (the engine in process, no gRPC).

Exact, not sampled: the kernel's counters of the jail's zygote and relay (their own time and
that of the children they reaped: program processes and job processes) and of this process.
CPU time, not wall time, so it compares code changes on a shared host better than throughput.

Usage: .venv/bin/python benchmarks/tracer_cpu.py [--repeat R] [--trivial]
(--trivial: a one-line program and one call instead of HumanEval, the fixed cost of a job.)
To compare two checkouts: PYTHONPATH=OTHER/services/tracer/src .venv/bin/python benchmarks/tracer_cpu.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from typing import Any

from tracer_throughput import load_tasks

TICK = os.sysconf("SC_CLK_TCK")
TRIVIAL = {
    "prompt": "def f(x):\n",
    "canonical_solution": "    return x\n",
    "test": "def check(c):\n    assert c(1) == 1\n",
}


def times(pid: int) -> list[float]:
    """utime, stime, cutime, cstime of ``pid`` in seconds."""
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return [int(x) / TICK for x in fields[11:15]]


def children(pid: int) -> list[int]:
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, task)) as fh:
            out += [int(c) for c in fh.read().split()]
    return out


async def measure(tasks: list[dict[str, Any]], repeat: int) -> dict[str, float]:
    from next_tracer.engine import TracerEngine
    from next_tracer.formats.registry import FormatRegistry
    from next_tracer.settings import TracerSettings

    engine = TracerEngine(TracerSettings(max_concurrency=1, port=0), FormatRegistry(load_entry_points=False))
    await engine.start()
    try:

        async def run(task: dict[str, Any]) -> bool:
            program = task["prompt"] + task["canonical_solution"]
            test = task["test"] + "\ncheck(%s)\n" % task.get("entry_point", "f")
            result = await engine.run_tests(program, [test])
            return result.verdict.value == "PASSED"

        for task in tasks[:10]:
            await run(task)
        worker = engine.sandbox.pool.idle[0]
        (zygote,) = children(worker.proc.pid)
        relay = children(zygote)[0]
        zygote0, relay0, self0 = times(zygote), times(relay), resource.getrusage(resource.RUSAGE_SELF)
        started, n, passed = time.perf_counter(), 0, 0
        for _ in range(repeat):
            for task in tasks:
                passed += await run(task)
                n += 1
        wall = time.perf_counter() - started
        zygote1, relay1, self1 = times(zygote), times(relay), resource.getrusage(resource.RUSAGE_SELF)
        if engine.sandbox.pool.idle[0] is not worker:
            raise SystemExit("the jail was replaced during the run; its counters are lost")
    finally:
        await engine.sandbox.close()
    z = [b - a for a, b in zip(zygote0, zygote1, strict=True)]
    r = [b - a for a, b in zip(relay0, relay1, strict=True)]
    server = self1.ru_utime - self0.ru_utime + self1.ru_stime - self0.ru_stime
    per_job = {
        "program processes": z[2] + z[3],
        "job processes": r[2] + r[3],
        "zygote": z[0] + z[1],
        "relay": r[0] + r[1],
        "server (engine, in process)": server,
    }
    out = {k: 1e3 * v / n for k, v in per_job.items()}
    out["total"] = sum(out.values())
    out["wall"] = 1e3 * wall / n
    out["jobs"], out["passed"] = n, passed
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trivial", action="store_true")
    args = parser.parse_args()
    tasks = [TRIVIAL] * 164 if args.trivial else load_tasks()
    res = asyncio.run(measure(tasks, args.repeat))
    print("jobs %d, passed %d, one jail, %.2f ms wall per job" % (res.pop("jobs"), res.pop("passed"), res.pop("wall")))
    total = res.pop("total")
    for role, ms in res.items():
        print("%-28s %6.2f ms CPU per job" % (role, ms))
    print("total %.2f ms CPU per job" % total)


if __name__ == "__main__":
    main()
