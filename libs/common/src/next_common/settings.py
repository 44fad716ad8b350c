"""Typed settings shared by the services; each service subclasses with its own env prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LogSettings(BaseSettings):
    """The logging part alone, so a one-shot command reads ``PREFIX_LOG_LEVEL`` without validating the rest."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    log_level: str = "INFO"
    log_json: bool = False


class ServiceSettings(LogSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    host: str = Field("[::]", description="Address to bind the gRPC server to.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus metrics port; 0 disables it.")
    grace_period_s: float = Field(10.0, ge=0, description="Seconds in-flight RPCs get after SIGTERM.")
