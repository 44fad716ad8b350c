"""The job's progress channel: JSON lines the worker appends and the server tails
(``next_common.jsonlines``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from next_common.jsonlines import append_line

EVENTS_FILE = "events.jsonl"


class EventWriter:
    def __init__(self, work_dir: Path) -> None:
        self.path = work_dir / EVENTS_FILE

    def write(self, kind: str, **fields: Any) -> None:
        append_line(self.path, {"type": kind, **fields})
