"""The zygote: the only process that forks program processes.

It is forked (or is, as the jail's PID 1) before any job is read, and it only ever receives
three pipe ends over a socket, never a job: so a program process, forked from it, holds no
test, no expected value and no channel that carries verdicts, whatever memory it scans. The
job process asks for a program process (``spawn``), gives it the program over its own pipe,
and asks the zygote for its exit status (``reap``), the only thing the zygote reports.

Standard library only: it runs inside the jail.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import time
from collections.abc import Callable

SPAWN = b"S"
REAP = b"R"
FORGET = b"F"  # the job process killed it and needs no status: reap it whenever it is gone
EXIT_GRACE_S = 0.5  # a program process that closed its pipes gets this long to exit by itself
_FDS_PER_SPAWN = 3
# fork() fails with EAGAIN when the jail user's process budget (RLIMIT_NPROC counts every process
# of that uid on the host) is held by orphans still being reaped or by other jails: retry briefly,
# reaping between tries, then report the failure instead of dying (which would end the jail).
SPAWN_RETRY_S = 2.0


class Zygote:
    """Server side: runs in the zygote process until the job side closes the socket."""

    def __init__(self, sock: socket.socket, child_main: Callable[[int, int, int], None], watch: int) -> None:
        self.sock = sock
        self.child_main = child_main
        self.watch = watch  # the job side's main process: the zygote ends when it does
        self.exited: dict[int, int] = {}
        self.children: set[int] = set()
        self.watch_status: int | None = None

    def serve(self) -> int:
        """Answer requests; returns the watched process's exit code once it has ended."""
        # Everything alive now is shared with every program process: keep the collector off it,
        # so a child's collections do not copy the zygote's pages.
        gc.freeze()
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, 64, _FDS_PER_SPAWN)
            except InterruptedError:
                continue
            except OSError:
                data, fds = b"", []
            if not data:
                for fd in fds:
                    os.close(fd)
                break
            self._collect()
            if data[:1] == SPAWN and len(fds) == _FDS_PER_SPAWN:
                self.sock.send(b"%d" % self._spawn(fds))
            elif data[:1] == REAP:
                self.sock.send(b"%d" % self._reap(int(data[1:])))
            elif data[:1] == FORGET:
                self._forget(int(data[1:]))
            else:
                for fd in fds:
                    os.close(fd)
                self.sock.send(b"-1")
        return self._watch_code()

    def _spawn(self, fds: list[int]) -> int:
        deadline = time.monotonic() + SPAWN_RETRY_S
        while True:
            try:
                pid = os.fork()
                break
            except OSError:
                self._collect()
                if time.monotonic() >= deadline:
                    for fd in fds:
                        os.close(fd)
                    return -1  # the job side records SANDBOX_ERROR: an infrastructure failure
                time.sleep(0.01)
        if pid == 0:
            code = 0
            try:
                self.sock.close()
                self.child_main(*fds)
            except BaseException:
                code = 70
            os._exit(code)
        for fd in fds:
            os.close(fd)
        self.children.add(pid)
        return pid

    def _reap(self, pid: int) -> int:
        """Exit status of one of our program processes; its whole process group is killed."""
        if pid not in self.children:
            return -1
        deadline = time.monotonic() + EXIT_GRACE_S
        while pid not in self.exited and time.monotonic() < deadline:
            self._collect()
            if pid not in self.exited:
                time.sleep(0.0005)
        _kill_group(pid)
        while pid not in self.exited:
            self._collect(block=True)
        self.children.discard(pid)
        return self.exited.pop(pid)

    def _forget(self, pid: int) -> None:
        if pid in self.children:
            _kill_group(pid)
            self.children.discard(pid)
            self.exited.pop(pid, None)  # if it is still running, _collect drops its status later

    def _collect(self, block: bool = False) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.watch:
                self.watch_status = status
            elif pid in self.children:
                self.exited[pid] = status
            if block:
                return

    def _watch_code(self) -> int:
        while self.watch_status is None:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            if pid == self.watch:
                self.watch_status = status
        status = self.watch_status or 0
        return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


class ZygoteClient:
    """Job side: asks the zygote for program processes over a SOCK_SEQPACKET socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def spawn(self, cmd_r: int, res_w: int, out_w: int) -> int:
        socket.send_fds(self.sock, [SPAWN], [cmd_r, res_w, out_w])
        pid = int(self.sock.recv(32) or b"-1")
        if pid <= 0:
            raise OSError("the zygote could not start a program process")
        return pid

    def forget(self, pid: int) -> None:
        """The job process killed this program process itself: no status needed, no reply."""
        self.sock.send(FORGET + b"%d" % pid)

    def reap(self, pid: int) -> int:
        """Wait for (and, after a grace period, kill) a program process; its wait status."""
        self.sock.send(REAP + b"%d" % pid)
        reply = self.sock.recv(32)
        if not reply:
            raise OSError("the zygote is gone")
        return int(reply)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


CLIENT: ZygoteClient | None = None  # set in the job side's main process by the harness


def start(
    child_main: Callable[[int, int, int], None], job_side: Callable[[], int], prepare: Callable[[], None] | None = None
) -> int:
    """Fork the job side; this process becomes the zygote. Returns the job side's exit code.

    Called before anything reads a job, so nothing a job holds is ever in the zygote; ``prepare``
    runs in the zygote after the fork, before it serves (warm-up, its seccomp filter).
    """
    global CLIENT
    zsock, jsock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            zsock.close()
            CLIENT = ZygoteClient(jsock)
            code = job_side()
        except BaseException:
            code = 70
        os._exit(code)
    jsock.close()
    # The zygote needs neither the job stream nor the report stream: only the relay holds them.
    for fd in (0, 1):
        os.dup2(2, fd)
    if prepare is not None:
        prepare()
    return Zygote(zsock, child_main, pid).serve()
