"""Tracing cost on MBPP-sized programs: the same program and first test run plainly
(``run_tests``) and traced (``trace``, next-inline), each sandboxed, interleaved per task.

Usage: .venv/bin/python benchmarks/trace_overhead.py [--tasks N]
Prints the median added wall time of a trace over a plain run, and the median ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


async def measure(n: int) -> None:
    from next_tracer.engine import TracerEngine
    from next_tracer.formats.registry import FormatRegistry
    from next_tracer.settings import TracerSettings

    tasks = [json.loads(line) for line in (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines()][:n]
    engine = TracerEngine(TracerSettings(max_concurrency=1), FormatRegistry(load_entry_points=False))
    await engine.start()
    added, ratios, steps = [], [], []
    for task in tasks:
        program = task["test_setup_code"] + "\n" + task["code"].replace("\r\n", "\n")
        test = task["test_list"][0]
        t0 = time.perf_counter()
        await engine.run_tests(program, [test])
        t1 = time.perf_counter()
        traced = await engine.trace(program, test)
        t2 = time.perf_counter()
        added.append(((t2 - t1) - (t1 - t0)) * 1000)
        ratios.append((t2 - t1) / (t1 - t0))
        steps.append(len({e.step for e in traced.events}))
    await engine.sandbox.close()
    print("tasks %d (MBPP, first test each), median trace steps %d" % (len(tasks), statistics.median(steps)))
    print("median added time of a trace over a plain run: %.2f ms" % statistics.median(added))
    print("ratio %.2f" % statistics.median(ratios))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    asyncio.run(measure(parser.parse_args().tasks))


if __name__ == "__main__":
    main()
