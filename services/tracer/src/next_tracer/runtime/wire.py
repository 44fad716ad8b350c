"""The harness's wire format: JSON lines on pipes, and the stream verdicts go out on."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO

from nextapi.tracer.verdicts import Verdict

MESSAGE_CHARS = 500


class ChildFailure(BaseException):
    """The program process stopped answering: ends the current test with ``status``.

    A BaseException, so test code's ``except Exception`` cannot swallow it.
    """

    def __init__(self, status: Verdict, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class LoadFailure(ChildFailure):
    """The program does not compile: every remaining test of the job fails the same way."""


def describe(exc: BaseException) -> str:
    text = "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    return text[:MESSAGE_CHARS]


def send(fd: int, obj: Any) -> None:
    write_all(fd, (json.dumps(obj, separators=(",", ":")) + "\n").encode())


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_parts(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` as one message without joining them (values can be hundreds of MB)."""
    n = os.writev(fd, parts)
    total = sum(map(len, parts))
    if n < total:  # a signal cut the write short: finish it the slow way
        write_all(fd, b"".join(parts)[n:])


class LineSplitter:
    """Lines out of a byte stream that arrives in chunks of any size (a line may span many).

    Chunks without a newline are kept as they came and joined once when their line ends, so a
    long line (a returned value can be hundreds of MB) is copied once, not once per chunk.
    Used on both sides of the jail: the job process reading a program process's replies, and
    the server reading a jail's frames.
    """

    def __init__(self) -> None:
        self.partial: list[bytes] = []
        self.pending = 0  # bytes of the line not yet ended

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data:
            self.partial.append(data)
            self.pending += len(data)
            return []
        lines = data.split(b"\n")
        tail = lines.pop()
        if self.partial:
            lines[0] = b"".join([*self.partial, lines[0]])
        self.partial = [tail] if tail else []
        self.pending = len(tail)
        return lines

    def rest(self) -> bytes:
        rest, self.partial, self.pending = b"".join(self.partial), [], 0
        return rest


class Output:
    """Where this process reports to the server (or to the jail's init): one JSON object a line."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def emit(self, obj: dict[str, Any], flush: bool = True) -> None:
        self.stream.write((json.dumps(obj, separators=(",", ":")) + "\n").encode())
        if flush:
            self.stream.flush()

    def write(self, *parts: bytes | memoryview) -> None:
        for part in parts:  # a buffered stream: small parts are gathered, large ones written as they are
            self.stream.write(part)

    def flush(self) -> None:
        self.stream.flush()


OUT = Output(sys.stdout.buffer)
