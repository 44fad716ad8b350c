"""Typed settings of the controller service (environment prefix ``CONTROLLER_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from next_common.settings import ServiceSettings


class ControllerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CONTROLLER_", frozen=True, extra="ignore")

    port: int = Field(50054, ge=0, le=65535)
    runs_root: str = Field(
        "", description="When set, run directories must lie under it (relative ones are taken from it)."
    )
    max_active_runs: int = Field(1, ge=1, description="Runs executing at once; more is RESOURCE_EXHAUSTED.")
    poll_interval_s: float = Field(0.25, gt=0, description="How often an event stream reads the run's events.")
