"""The job process's side of a program process: start it through the zygote, talk to it, enforce limits."""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import time
from typing import Any

from nextapi.tracer.verdicts import Verdict

from . import zygote
from .wire import OUT, ChildFailure, LineSplitter, send

# Trace events share the result pipe with replies; they are bounded by the trace's own step limit.
EVENTS_ALLOWANCE = 4 * 1024 * 1024


def zygote_client() -> zygote.ZygoteClient:
    if zygote.CLIENT is None:
        raise OSError("no zygote in this process")
    return zygote.CLIENT


# Wall-clock time a call may take, per second of its CPU limit (plus a second): the limit itself
# is CPU time, so a program is not failed for sharing its cores with other work.
WALL_PER_CPU_S = 3.0
CPU_POLL_S = 0.05


def wall_allowance(timeout_s: float) -> float:
    return WALL_PER_CPU_S * timeout_s + 1.0


class ProgramChild:
    """A program process, forked by the zygote; the job process talks to it over its pipes.

    ``setup`` carries the program, its limits, what the tests may use and the trace options:
    the program process never sees anything else of the job.
    """

    def __init__(self, setup: dict[str, Any]) -> None:
        self.limits = setup["limits"]
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            pid = zygote_client().spawn(cmd_r, res_w, out_w)
        except OSError as exc:
            for fd in (cmd_r, cmd_w, res_r, res_w, out_r, out_w):
                os.close(fd)
            raise ChildFailure(Verdict.SANDBOX_ERROR, "cannot start a program process: %s" % exc) from None
        for fd in (cmd_r, res_w, out_w):
            os.close(fd)
        self.pid = pid
        self.cmd_fd = cmd_w
        self.res_fd = res_r
        self.out_fd = out_r
        self.cpu_clock = ((~pid) << 3) | 2  # the kernel's CPU-time clock of process `pid`
        self.cpu_mark = 0.0
        self.cpu_check_from = 0.0
        self.lines: collections.deque[bytes] = collections.deque()
        self.replies = LineSplitter()
        self.output = bytearray()
        self.output_total = 0
        self.alive = True
        self._status = 0
        self.events: list[dict[str, Any]] = []
        self.step = 0
        self.send(setup)

    def cpu(self) -> float:
        try:
            return time.clock_gettime(self.cpu_clock)
        except OSError:
            return 0.0

    def start_budget(self) -> float:
        """Start a new CPU budget (one test or one input); returns its wall-clock deadline."""
        self.cpu_mark = self.cpu()
        now = time.monotonic()
        # CPU time cannot exceed the limit before this much wall-clock time has passed (one thread).
        self.cpu_check_from = now + self.limits["timeout_s"]
        return now + wall_allowance(self.limits["timeout_s"])

    def receive(self, deadline: float) -> dict[str, Any]:
        """Next message from the child; raises ChildFailure on timeout, limits or death."""
        msg: dict[str, Any] = json.loads(self.receive_raw(deadline))
        return msg

    def receive_raw(self, deadline: float) -> bytes:
        """Next reply line from the child, unparsed (trace events are collected on the way)."""
        while True:
            while self.lines:
                line = self.lines.popleft()
                if line.startswith(b'{"events"'):
                    self.events.extend(json.loads(line)["events"])
                    continue
                return line
            if self.replies.pending > self.limits["output_bytes"] + EVENTS_ALLOWANCE:
                self.kill()
                raise ChildFailure(
                    Verdict.OUTPUT_LIMIT, "the program returned more than %d bytes" % self.limits["output_bytes"]
                )
            OUT.flush()  # results buffered while the child's replies kept coming
            now = time.monotonic()
            if now >= deadline:
                self.kill()
                allowance = wall_allowance(self.limits["timeout_s"])
                raise ChildFailure(Verdict.TIMEOUT, "timed out: no answer within %.3gs of wall-clock time" % allowance)
            if now >= self.cpu_check_from:
                if self.cpu() - self.cpu_mark > self.limits["timeout_s"]:
                    self.kill()
                    raise ChildFailure(Verdict.TIMEOUT, "timed out after %.3gs of CPU time" % self.limits["timeout_s"])
                wait = min(deadline - now, CPU_POLL_S)
            else:
                wait = min(deadline, self.cpu_check_from) - now
            ready, _, _ = select.select([self.res_fd, self.out_fd], [], [], wait)
            if self.out_fd in ready:
                chunk = os.read(self.out_fd, 65536)
                if chunk:
                    self.output_total += len(chunk)
                    if len(self.output) < 4096:
                        self.output += chunk[: 4096 - len(self.output)]
                    if self.output_total > self.limits["output_bytes"]:
                        self.kill()
                        raise ChildFailure(
                            Verdict.OUTPUT_LIMIT, "wrote more than %d bytes of output" % self.limits["output_bytes"]
                        )
            if self.res_fd in ready:
                chunk = os.read(self.res_fd, 1 << 20)
                if not chunk:
                    raise self._death()
                self.lines.extend(self.replies.feed(chunk))

    def send(self, obj: dict[str, Any]) -> None:
        try:
            send(self.cmd_fd, obj)
        except OSError:
            raise self._death() from None

    def _death(self) -> ChildFailure:
        cpu = self.cpu()
        status = self.reap()
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu - self.cpu_mark > self.limits["timeout_s"]):
                return ChildFailure(Verdict.TIMEOUT, "CPU time limit exceeded")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return ChildFailure(Verdict.CRASHED, "killed by signal %s" % name)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        return ChildFailure(
            Verdict.ERROR, "the program ended its process (exit status %d) before the test finished" % code
        )

    def kill(self) -> None:
        """Kill the program process's whole group; the zygote reaps it without being waited for."""
        if self.alive:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                zygote_client().forget(self.pid)
            except OSError:
                pass
            self.alive = False
            self._status = signal.SIGKILL
            self._close_fds()

    def reap(self) -> int:
        """The exit status, from the zygote (which also kills what is left of the process group)."""
        if not self.alive:
            return self._status
        try:
            status = zygote_client().reap(self.pid)
        except (OSError, ValueError):
            status = -1
        if status < 0:  # the zygote is gone or never knew this pid: the sandbox broke, not the program
            status = signal.SIGKILL
        self.alive = False
        self._status = status
        self._close_fds()
        return status

    def _close_fds(self) -> None:
        for fd in (self.cmd_fd, self.res_fd, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass
