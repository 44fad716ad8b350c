"""Warm-up: run, on made-up work, the code that every forked job and program process runs.

A process forked from the relay (a job process) or from the zygote (a program process) that
runs a function for the first time pays for it in full: CPython's adaptive interpreter counts
calls and specializes the bytecode by writing into the code objects, and lazily built caches
fill in. Each of those writes also copies a page the child shared with its parent. Done once
in the parent before it forks, every child starts from specialized code and filled caches
instead (docs/tracer.md gives the measured effect).

The work is fixed text in this module: no job is read before or during the warm-up, so the
zygote still never holds anything of a job. Standard library only: it runs inside the jail.
"""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

# Enough calls for the interpreter to specialize (3.11 quickens a code object after 8 calls).
ROUNDS = 12

PROGRAM = '''
from typing import List


def candidate(numbers: List[int], k: int = 2) -> List[int]:
    """Multiples of k, scaled by their position, in order."""
    out = []
    for i, x in enumerate(numbers):
        if x % k == 0:
            out.append(x * i)
    return sorted(out)


def lengths(text):
    return {word: len(word) for word in text.split()}


def mean(values):
    return sum(values) / len(values) if values else 0.0


LIMIT = 10
'''

TEST = """
def check(fn):
    assert fn([1, 2, 3, 4, 5, 6]) == [2, 12, 30]
    assert fn([], 3) == []
    assert fn(list(range(10)), k=5) == [25]
    assert lengths("a bb ccc") == {"a": 1, "bb": 2, "ccc": 3}
    assert abs(mean([1.5, 2.5]) - 2.0) < 1e-9
    assert LIMIT == 10
    assert [fn(x) for x in ([2], [4, 4])] == [[0], [4]]


check(candidate)
"""

LIMITS = {"timeout_s": 10.0, "memory_bytes": 512 << 20, "output_bytes": 1 << 20, "file_bytes": 1 << 20}
TRACE = {"max_steps": 1000, "max_value_chars": 200, "max_items": 20, "backend": "auto"}


def jobs() -> list[dict[str, Any]]:
    """The made-up jobs: statement tests with and without a trace, and io inputs."""
    statements = {"kind": "statements", "program": PROGRAM, "tests": [{"source": TEST}], "limits": LIMITS}
    return [
        statements,
        {**statements, "trace": TRACE, "trace_index": 0},
        {
            "kind": "calls",
            "program": PROGRAM,
            "entry_point": "candidate",
            "inputs_json": json.dumps([[[1, 2, 3, 4]], [[6, 8], 3], [[]]]),
            "tests": [],
            "limits": LIMITS,
        },
    ]


def warm_job_side() -> None:
    """In the relay, before its first job: run the made-up jobs here, their output discarded.

    Their program processes are real ones, forked by the zygote, so the job side's whole path
    (spawn, call, reap) runs; the jobs' reports go to a buffer instead of the server.
    """
    from . import wire
    from .jobs import run_job

    stream = wire.OUT.stream
    try:
        for _ in range(ROUNDS):
            for job in jobs():
                wire.OUT.stream = io.BytesIO()
                run_job(json.loads(json.dumps(job)))
    except BaseException as exc:  # a slower first jobs, never a broken jail
        sys.stderr.write("job-side warm-up failed: %r\n" % exc)
    finally:
        wire.OUT.stream = stream


def warm_program_side() -> None:
    """In the zygote, before it serves: load the program and answer calls, as a program process would.

    Everything but the confinement (rlimits, its own session, the seccomp filter) runs here;
    of that, only the foreign call is warmed.
    """
    from . import confine
    from .program_child import serve_program

    try:
        confine.prctl(3, 0)  # PR_GET_DUMPABLE: the first foreign call of a process is the slow one
        for _ in range(ROUNDS):
            for traced in (False, True):
                _serve_made_up(serve_program, traced)
    except BaseException as exc:
        sys.stderr.write("program-side warm-up failed: %r\n" % exc)


def _serve_made_up(serve_program: Any, traced: bool) -> None:
    from nextapi.tracer import plain

    setup = {"program": PROGRAM, "limits": LIMITS, "exports": ["candidate"], "trace": TRACE if traced else None}
    args = [plain.encode([1, 2, 3, 4, 5, 6]), plain.encode(2)]
    commands = [
        {"call": "candidate", "args": args, "kwargs": {}, "want_args": True, "step": 0},
        {"call": "lengths", "args": [plain.encode("a bb")], "kwargs": {}, "want_args": True, "step": 0},
        {"call": "candidate", "args": [{"$ref": "LIMIT"}], "kwargs": {}, "want_args": False, "step": 0},
        {"batch": "candidate", "inputs": [[[1, 2]], [[4], 3], [None]]},
    ]
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    os.set_blocking(res_w, False)  # replies nobody reads yet: a full pipe ends the warm-up, not the zygote
    try:
        os.write(cmd_w, b"".join(json.dumps(c).encode() + b"\n" for c in commands))
        os.close(cmd_w)
        cmd_w = -1
        with os.fdopen(cmd_r, "rb", buffering=0) as reader:
            cmd_r = -1
            serve_program(setup, reader, bytearray(), res_w)
    finally:
        for fd in (cmd_r, cmd_w, res_w):
            if fd >= 0:
                os.close(fd)
        while os.read(res_r, 65536):
            pass
        os.close(res_r)
