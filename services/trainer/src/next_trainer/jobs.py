"""Domain types of a training job (no gRPC here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any

from next_trainer.config import TrainingConfig
from next_trainer.data import DataReport


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Progress:
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float = 0.0
    learning_rate: float = 0.0
    tokens_per_second: float = 0.0
    eta_seconds: float = 0.0
    elapsed_seconds: float = 0.0

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Progress:
        return cls(**{f.name: event[f.name] for f in fields(cls) if f.name in event})


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: JobState
    config: TrainingConfig
    progress: Progress = field(default_factory=Progress)
    data: DataReport | None = None
    reason: str = ""
    adapter_path: str = ""
    merged_path: str = ""
    resumed_from_step: int = 0
    final_loss: float = 0.0
