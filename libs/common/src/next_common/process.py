"""Child processes that must not outlive their parent."""

from __future__ import annotations

import os
import signal
import sys

PR_SET_PDEATHSIG = 1
# Names the parent's pid to a child that must not outlive it (``child_env``).
PARENT_PID_ENV = "NEXT_PARENT_PID"


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux; elsewhere a no-op)."""
    if sys.platform != "linux":
        return
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, sig)


def child_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a child that must not outlive this process: it calls ``die_with_named_parent``.

    Used instead of ``preexec_fn=die_with_parent``: a ``preexec_fn`` makes ``subprocess`` fork
    instead of vfork, and forking a process with live gRPC runs gRPC's fork handlers, which can
    kill the child before it execs (grpcio 1.81+, grpc/grpc#43055: "the embedded tracer did not
    start" under load).
    """
    return {**env, PARENT_PID_ENV: str(os.getpid())}


def die_with_named_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """In a child started with ``child_env``: die with that parent, and at once if it is already gone."""
    expected = os.environ.pop(PARENT_PID_ENV, None)  # not for this process's own children
    if not expected:
        return
    die_with_parent(sig)
    if os.getppid() != int(expected):  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)
