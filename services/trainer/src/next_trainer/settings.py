"""Typed settings of the trainer service (environment prefix ``TRAINER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from next_common.settings import ServiceSettings


class TrainerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINER_", frozen=True, extra="ignore")

    port: int = Field(50053, ge=0, le=65535)
    storage_root: str = Field(
        "",
        description="When set, data, outputs and warm-start adapters must lie under it (relative paths are"
        " taken from it): clients cannot make the server read or write elsewhere.",
    )
    max_running_jobs: int = Field(1, ge=1, description="Jobs training at once (usually one per node's GPUs).")
    max_queued_jobs: int = Field(16, ge=0, description="Jobs waiting beyond those running; more is RESOURCE_EXHAUSTED.")
    poll_interval_s: float = Field(0.25, gt=0, description="How often a running job's progress file is read.")
    cancel_grace_s: float = Field(10.0, ge=0, description="SIGTERM to SIGKILL when a job is cancelled.")
