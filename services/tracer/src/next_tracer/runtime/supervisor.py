"""The harness's side of a program process: fork it, talk to it, enforce its limits."""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import sys
import time
from typing import Any

from .program_child import run_program_child
from .wire import MAX_MESSAGE, OUT, ChildFailure, send


class ProgramChild:
    """A forked child running the program; the parent talks to it over two pipes."""

    def __init__(self, job: dict[str, Any], program: Any, trace: bool = False) -> None:
        self.limits = job["limits"]
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(cmd_w)
                os.close(res_r)
                os.close(out_r)
                run_program_child(job, program, cmd_r, res_w, out_w, trace)
            except BaseException:
                code = 70
            os._exit(code)
        for fd in (cmd_r, res_w, out_w):
            os.close(fd)
        self.pid = pid
        self.cmd_fd = cmd_w
        self.res_fd = res_r
        self.out_fd = out_r
        self.lines: collections.deque[bytes] = collections.deque()
        self.partial: list[bytes] = []
        self.partial_len = 0
        self.output = bytearray()
        self.output_total = 0
        self.alive = True
        self._status = 0
        self.events: list[dict[str, Any]] = []
        self.step = 0

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
            if self.partial_len > MAX_MESSAGE:
                self.kill()
                raise ChildFailure("OUTPUT_LIMIT", "the program returned a value larger than the result limit")
            OUT.flush()  # results buffered while the child's replies kept coming
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise ChildFailure("TIMEOUT", "timed out after %.3gs" % self.limits["timeout_s"])
            ready, _, _ = select.select([self.res_fd, self.out_fd], [], [], remaining)
            if self.out_fd in ready:
                chunk = os.read(self.out_fd, 65536)
                if chunk:
                    self.output_total += len(chunk)
                    if len(self.output) < 4096:
                        self.output += chunk[: 4096 - len(self.output)]
                    if self.output_total > self.limits["output_bytes"]:
                        self.kill()
                        raise ChildFailure(
                            "OUTPUT_LIMIT", "wrote more than %d bytes of output" % self.limits["output_bytes"]
                        )
            if self.res_fd in ready:
                chunk = os.read(self.res_fd, 1 << 20)
                if not chunk:
                    raise self._death()
                self._feed(chunk)

    def _feed(self, chunk: bytes) -> None:
        # Joins a long message once, when its newline arrives (no quadratic re-scanning).
        if b"\n" not in chunk:
            self.partial.append(chunk)
            self.partial_len += len(chunk)
            return
        parts = chunk.split(b"\n")
        self.lines.append(b"".join(self.partial) + parts[0])
        self.lines.extend(parts[1:-1])
        self.partial = [parts[-1]] if parts[-1] else []
        self.partial_len = len(parts[-1])

    def send(self, obj: dict[str, Any]) -> None:
        try:
            send(self.cmd_fd, obj)
        except OSError:
            raise self._death() from None

    def _death(self) -> ChildFailure:
        status = self.reap()
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU:
                return ChildFailure("TIMEOUT", "CPU time limit exceeded")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            return ChildFailure("CRASHED", "killed by signal %s" % name)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        return ChildFailure("ERROR", "the program ended its process (exit status %d) before the test finished" % code)

    def kill(self) -> None:
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reap()

    def reap(self) -> int:
        if not self.alive:
            return self._status
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:  # already reaped by a jail-wide clean-up
            status = signal.SIGKILL
        self.alive = False
        self._status = status
        for fd in (self.cmd_fd, self.res_fd, self.out_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        return status
