"""Domain types of a training job (no gRPC here; ``convert`` maps them)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nextapi.trainer.config import TrainingConfig


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def ended(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass
class DataReport:
    """What tokenizing the training data kept, truncated and dropped."""

    examples: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    tokens: int = 0
    completion_tokens: int = 0
    data_sha256: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
