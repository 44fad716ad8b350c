"""The job's progress channel: JSON lines the worker appends and the server tails.

A file rather than a pipe, so the record survives the processes that wrote and read it: a
restarted server or a person can read how a job went, and a resumed job appends to it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"


class EventWriter:
    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / EVENTS_FILE

    def write(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"type": kind, **fields}, sort_keys=True) + "\n"
        # One write of one line in append mode: a reader never sees half of an event.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


class EventReader:
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
        events = []
        for raw in chunk[:end].splitlines():
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue  # not ours (a crashed writer never writes half a line, but be lenient)
            if isinstance(event, dict):
                events.append(event)
        return events
