"""Progress logs as JSON lines: one writer appends, any number of readers follow.

A file rather than a pipe, so the record survives the processes that wrote and read it: a
restarted server or a person can read how a job or run went, and a resumed one appends to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def append_line(path: Path, record: dict[str, Any]) -> None:
    """One write of one line in append mode: a reader never sees half of a record."""
    line = json.dumps(record, sort_keys=True) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


class Tail:
    """Reads complete lines appended since the last call (a partial last line waits)."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        records = []
        for raw in chunk[:end].splitlines():
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue  # not ours (a writer never writes half a line, but be lenient)
            if isinstance(record, dict):
                records.append(record)
        return records
