"""One client interface over a trainer: in-process (a JobManager here) or a server at ``--target``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from next_trainer.config import TrainingConfig
from next_trainer.convert import job_from_proto, spec_from_config
from next_trainer.jobs import JobStatus
from next_trainer.manager import JobManager
from nextapi.trainer.v1 import trainer_service_pb2 as pb
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc


class TrainerClient(Protocol):
    async def start(self, config: TrainingConfig) -> JobStatus: ...

    def watch(self, job_id: str) -> AsyncIterator[JobStatus]: ...

    async def cancel(self, job_id: str) -> JobStatus: ...

    async def close(self) -> None: ...


class InProcessTrainerClient:
    def __init__(self, manager: JobManager | None = None) -> None:
        self.manager = manager or JobManager()

    async def start(self, config: TrainingConfig) -> JobStatus:
        return await self.manager.start(config)

    def watch(self, job_id: str) -> AsyncIterator[JobStatus]:
        return self.manager.watch(job_id)

    async def cancel(self, job_id: str) -> JobStatus:
        return await self.manager.cancel(job_id)

    async def close(self) -> None:
        await self.manager.close()


class GrpcTrainerClient:
    def __init__(self, target: str) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = pb_grpc.TrainerServiceStub(self.channel)

    async def start(self, config: TrainingConfig) -> JobStatus:
        resp = await self.stub.StartTraining(pb.StartTrainingRequest(spec=spec_from_config(config)), timeout=120)
        return job_from_proto(resp.job)

    async def watch(self, job_id: str) -> AsyncIterator[JobStatus]:
        async for resp in self.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job_id)):
            yield job_from_proto(resp.job)

    async def cancel(self, job_id: str) -> JobStatus:
        resp = await self.stub.CancelJob(pb.CancelJobRequest(job_id=job_id), timeout=120)
        return job_from_proto(resp.job)

    async def close(self) -> None:
        await self.channel.close()
