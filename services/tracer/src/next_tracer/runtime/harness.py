"""Sandbox harness: the entry point inside the jail (its PID 1 under nsjail).

Processes. The first process (the jail's PID 1) forks the *relay* and then becomes the
*zygote* (``zygote``) before anything reads a job. The relay reads jobs and runs each in a
*job process*, which runs the test code itself (``jobs``, ``session``), with every callable
the tests may use replaced by a proxy that forwards the call (``supervisor``). The untrusted
program runs only in *program processes*, which the zygote forks on the job process's request:
they never shared memory with anything that held a job, so a program can scan all of its
memory and find no test, no expected value and no verdict channel. Each one confines itself
(``confine``: signals only to its own process group, no pidfds or ptrace) before the program
runs, and the relay and job processes are not dumpable.

Every value that comes back is decoded into fresh builtin objects (``plain``) before a test
compares it. A verdict is the job process's own observation of the test code running to
completion, written on a pipe to the relay (``wire``), which no program process holds.

Two modes: ``main`` runs one job (a fresh jail per job); ``serve`` is a pre-warmed jail whose
relay forks a fresh job process per job. Standard library only.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import traceback

if __package__:  # imported as next_tracer.runtime.harness (tests, type checking)
    from next_tracer.runtime import confine, scratch, warmup, wire, zygote
    from next_tracer.runtime.jobs import run_job
    from next_tracer.runtime.program_child import run_program_child
else:  # run as a script inside the jail, where /next holds ``runtime`` and a read-only ``nextapi``
    # (unjailed, sandbox "none", the server names where nextapi is installed: --import-root=DIR)
    sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + [
        arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("--import-root=")
    ]
    from runtime import confine, scratch, warmup, wire, zygote  # type: ignore[import-not-found, no-redef]
    from runtime.jobs import run_job  # type: ignore[import-not-found, no-redef]
    from runtime.program_child import run_program_child  # type: ignore[import-not-found, no-redef]


def die_with_parent() -> None:
    # When the server kills nsjail (deadline, shutdown), the whole jail must go too.
    confine.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> int:
    """One job per jail: read it from stdin, report on stdout."""
    job = json.loads(sys.stdin.buffer.read())
    scratch.configure(job)
    scratch.wipe_scratch()
    run_job(job)
    return 0


def serve() -> None:
    """Pre-warmed mode: PID 1 of a long-lived jail runs jobs one at a time.

    This process only reads jobs and forks; each job runs in a fresh forked *job process*
    (which runs the tests; the zygote forks its program processes), so nothing a job does can change
    the state the next job starts from. After each job every other process in the jail is
    killed and the scratch space wiped. Control lines are prefixed ``Z``; what the job process
    writes is relayed in frames ``J<length>\n<bytes>``, so a job cannot forge the end of a job.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer
    warmup.warm_job_side()
    scratch.clean_jail()
    out.write(b'Z{"ready":true}\n')
    out.flush()
    while True:
        line = stdin.readline()
        if not line:
            return
        job = json.loads(line)
        read_fd, write_fd = os.pipe()
        gc.freeze()  # the job process's collections then leave the relay's pages shared
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                die_with_parent()
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
        while chunk := os.read(read_fd, 1 << 20):
            out.write(b"J%d\n" % len(chunk))
            out.write(chunk)
            out.flush()
        os.close(read_fd)
        scratch.clean_jail()
        out.write(b'Z{"idle":true}\n')
        out.flush()


def relay(serving: bool, jailed: bool) -> int:
    """The job side: everything that reads jobs runs in this process and its children."""
    die_with_parent()  # the zygote is gone: so is the jail
    confine.set_undumpable()
    scratch.configure({}, jailed=jailed)
    try:
        if serving:
            serve()
            return 0
        return main()
    except BaseException:
        wire.OUT.emit({"harness_error": traceback.format_exc()[-2000:]})
        return 70


def prepare_zygote(serving: bool) -> None:
    """In the zygote, before it serves: warm it up (a pre-warmed jail) and confine it."""
    if serving:
        warmup.warm_program_side()
    mode = confine.confine_zygote()
    if mode != "seccomp":  # each program process then installs the whole filter itself
        sys.stderr.write("zygote filter %s\n" % mode)


def start() -> int:
    jailed = os.getpid() == 1
    if jailed:
        die_with_parent()  # the server killed nsjail (deadline, shutdown): the whole jail goes
    confine.set_undumpable()
    serving = "--serve" in sys.argv[1:]
    if serving and not jailed:
        # Between jobs it kills every other process it can and wipes /tmp: only as a jail's init.
        sys.stderr.write("harness --serve runs only as PID 1 of a jail\n")
        return 2
    return zygote.start(run_program_child, lambda: relay(serving, jailed), lambda: prepare_zygote(serving))


if __name__ == "__main__":
    sys.exit(start())
