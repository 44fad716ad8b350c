"""Sandbox harness: the entry point inside the jail (its PID 1 under nsjail).

Trust split. The harness never runs program code: it forks a *program process*
(``program_child``) that executes the untrusted program and answers call requests ("call f
with these plain arguments"), and it runs the test code itself (``jobs``, ``session``), with
every program-defined callable replaced by a proxy that forwards the call to the program
process (``supervisor``). So the program only ever sees arguments, never the tests' expected
values, and every value that comes back is decoded into fresh builtin objects (``plain``)
before a test compares it. A verdict is the harness's own observation of the test code running
to completion, written to the jail's stdout (``wire``), which no program process can reach.

Two modes: ``main`` runs one job (a fresh jail per job); ``serve`` is the init of a pre-warmed
jail that forks a fresh job process per job. Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

if __package__:  # imported as next_tracer.runtime.harness (tests, type checking)
    from next_tracer.runtime import scratch, wire
    from next_tracer.runtime.jobs import run_job
else:  # run as a script inside the jail, where the runtime directory is all there is
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from runtime import scratch, wire  # type: ignore[import-not-found, no-redef]
    from runtime.jobs import run_job  # type: ignore[import-not-found, no-redef]


def die_with_parent() -> None:
    # When the server kills nsjail (deadline, shutdown), the whole jail must go too.
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> None:
    """One job per process: read it from stdin, report on stdout."""
    if os.getpid() == 1:
        die_with_parent()
    job = json.loads(sys.stdin.buffer.read())
    scratch.configure(job)
    scratch.clean_jail()
    run_job(job)


def serve() -> None:
    """Pre-warmed mode: PID 1 of a long-lived jail runs jobs one at a time.

    This process only reads jobs and forks; each job runs in a fresh forked *job process*
    (which runs the tests and forks the program children), so nothing a job does can change
    the state the next job starts from. After each job every other process in the jail is
    killed and the scratch space wiped. Control lines are prefixed ``Z``; every line of the
    job process is relayed with a ``J`` prefix, so a job cannot forge the end of a job.
    """
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer
    scratch.configure({"jailed": True})
    scratch.clean_jail()
    out.write(b'Z{"ready":true}\n')
    out.flush()
    while True:
        line = stdin.readline()
        if not line:
            return
        job = json.loads(line)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(read_fd)
                os.dup2(write_fd, 1)
                os.close(write_fd)
                r, w = os.pipe()
                os.close(w)
                os.dup2(r, 0)
                wire.OUT.stream = os.fdopen(1, "wb")
                run_job(job)
            except BaseException:
                try:
                    wire.OUT.emit({"harness_error": traceback.format_exc()[-2000:]})
                except BaseException:
                    pass
                code = 70
            os._exit(code)
        os.close(write_fd)
        partial: list[bytes] = []
        while True:
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            if b"\n" not in chunk:
                partial.append(chunk)
                continue
            lines = chunk.split(b"\n")
            lines[0] = b"".join(partial) + lines[0]
            tail = lines.pop()  # what follows the last newline
            partial = [tail] if tail else []
            out.write(b"".join(b"J" + item + b"\n" for item in lines))
            out.flush()
        os.close(read_fd)
        if partial:
            out.write(b"J" + b"".join(partial) + b"\n")
        scratch.clean_jail()
        out.write(b'Z{"idle":true}\n')
        out.flush()


if __name__ == "__main__":
    try:
        serve() if sys.argv[1:] == ["--serve"] else main()
    except BaseException:
        wire.OUT.emit({"harness_error": traceback.format_exc()[-2000:]})
        raise
