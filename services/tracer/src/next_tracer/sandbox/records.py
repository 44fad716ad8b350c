"""What one sandboxed execution reported, before the engine decides verdicts (server-internal)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobRecords:
    """What one sandboxed execution reported, before verdicts are decided."""

    tests: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    done: bool = False
    failure: str = ""
    limit_hit: str = ""  # a limit of the whole execution that the program reached: "TIMEOUT" | "OUTPUT_LIMIT"

    @property
    def broken(self) -> bool:
        """The sandbox failed (no verdict for some test and no limit explains it): worth a retry."""
        return not self.done and not self.limit_hit
