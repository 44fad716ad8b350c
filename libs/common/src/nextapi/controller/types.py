"""The controller's domain types as clients see them (no gRPC here; ``convert`` maps them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageStatus:
    name: str
    state: str  # "running", "completed", "failed", ...
    wall_seconds: float = 0.0
    service_seconds: float = 0.0
    summary: dict[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True)
class RunStatus:
    state: str
    stages: list[StageStatus] = field(default_factory=list)
    active: bool = False


@dataclass(frozen=True)
class RunEvent:
    time: float
    stage: str
    kind: str
    event: dict[str, Any]  # the whole line of the run's events.jsonl
