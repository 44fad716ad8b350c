"""Prometheus metrics of the trainer service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

JOBS_STARTED = Counter("next_trainer_jobs_started_total", "Training jobs accepted")
JOBS_ENDED = Counter("next_trainer_jobs_ended_total", "Training jobs that ended, by final state", ["state"])
JOBS_RUNNING = Gauge("next_trainer_jobs_running", "Training jobs whose process is running")
