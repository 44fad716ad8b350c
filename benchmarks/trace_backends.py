"""sys.settrace vs sys.monitoring (3.12+) for the tracer's capture, in process (no sandbox):
each MBPP reference program traced on its first test with both backends, interleaved.

Usage: PYTHON3.12 benchmarks/trace_backends.py [--tasks N] [--repeat R]
(runs under any interpreter >= 3.12; standard library only besides the tracer's runtime).
The last line is ``ratio <monitoring time / settrace time>`` (below 1.0: monitoring is faster).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import CodeType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services" / "tracer" / "src" / "next_tracer"))
DATA = ROOT.parent / "shared" / "data"

from runtime.tracing import ReprLimits, make_tracer  # type: ignore[import-not-found]  # noqa: E402


def trace_once(program: CodeType, test: CodeType, backend: str) -> float:
    ns: dict[str, object] = {"__name__": "solution"}
    try:
        exec(program, ns)
    except Exception:
        return 0.0
    events: list[dict[str, object]] = []
    tracer = make_tracer([program], {"<program>": "program"}, {program}, events.extend, ReprLimits(), backend=backend)
    started = time.perf_counter()
    tracer.start(set())
    try:
        exec(test, ns)
    except BaseException:
        pass
    finally:
        tracer.stop()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    lines = (DATA / "mbpp" / "mbpp.jsonl").read_text().splitlines()[: args.tasks]
    jobs = []
    for line in lines:
        task = json.loads(line)
        try:
            program = compile(task["test_setup_code"] + "\n" + task["code"].replace("\r\n", "\n"), "<program>", "exec")
            jobs.append((program, compile(task["test_list"][0], "<test>", "exec")))
        except SyntaxError:
            continue
    totals = {"settrace": 0.0, "monitoring": 0.0}
    for _ in range(args.repeat):
        for program, test in jobs:
            for backend in totals:
                totals[backend] += trace_once(program, test, backend)
    print("python %s, %d MBPP programs x %d" % (sys.version.split()[0], len(jobs), args.repeat))
    for backend, total in totals.items():
        print("%-10s %.3fs" % (backend, total))
    print("ratio %.2f" % (totals["monitoring"] / totals["settrace"]))


if __name__ == "__main__":
    main()
