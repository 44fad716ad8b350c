"""The trainer client that runs jobs in this process's JobManager (embedded mode, the CLI, tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from next_trainer.job_manager import JobManager
from nextapi.trainer.config import TrainingConfig
from nextapi.trainer.types import JobStatus


class InProcessTrainerClient:
    def __init__(self, manager: JobManager | None = None) -> None:
        self.manager = manager or JobManager()

    async def start(self, config: TrainingConfig) -> JobStatus:
        return await self.manager.start(config)

    def watch(self, job_id: str) -> AsyncIterator[JobStatus]:
        return self.manager.watch(job_id)

    async def cancel(self, job_id: str) -> JobStatus:
        return await self.manager.cancel(job_id)

    async def list_jobs(self) -> list[JobStatus]:
        return self.manager.jobs()

    async def close(self) -> None:
        await self.manager.close()
