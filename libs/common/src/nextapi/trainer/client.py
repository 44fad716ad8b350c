"""The trainer client: what callers code against (``TrainerClient``) and its gRPC implementation.

Depends on the generated API and the trainer's domain types only (no torch); the in-process
implementation, which runs jobs itself, is ``next_trainer.inprocess`` (server package).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Protocol

import grpc

from nextapi.trainer.config import TrainingConfig
from nextapi.trainer.convert import job_from_proto, spec_from_config
from nextapi.trainer.types import JobStatus
from nextapi.trainer.v1 import trainer_service_pb2 as pb
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class TrainerClient(Protocol):
    async def start(self, config: TrainingConfig) -> JobStatus: ...

    def watch(self, job_id: str) -> AsyncIterator[JobStatus]: ...

    async def cancel(self, job_id: str) -> JobStatus: ...

    async def list_jobs(self) -> list[JobStatus]: ...

    async def close(self) -> None: ...


class GrpcTrainerClient:
    def __init__(self, target: str, channel: grpc.aio.Channel | None = None) -> None:
        """``channel``: an existing one (the controller's, with its retry policy) instead of a new one."""
        self.channel = channel or grpc.aio.insecure_channel(target)
        self._owns_channel = channel is None
        self.stub = pb_grpc.TrainerServiceStub(self.channel)

    async def start(self, config: TrainingConfig) -> JobStatus:
        resp = await self.stub.StartTraining(pb.StartTrainingRequest(spec=spec_from_config(config)), timeout=600)
        return job_from_proto(resp.job)

    async def watch(self, job_id: str) -> AsyncIterator[JobStatus]:
        async for resp in self.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job_id)):
            yield job_from_proto(resp.job)

    async def cancel(self, job_id: str) -> JobStatus:
        resp = await self.stub.CancelJob(pb.CancelJobRequest(job_id=job_id), timeout=120)
        return job_from_proto(resp.job)

    async def list_jobs(self) -> list[JobStatus]:
        resp = await self.stub.ListJobs(pb.ListJobsRequest(), timeout=60)
        return [job_from_proto(job) for job in resp.jobs]

    async def close(self) -> None:
        if self._owns_channel:
            await self.channel.close()


def _same_path(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def same_training(running: TrainingConfig, wanted: TrainingConfig) -> bool:
    """Whether a running job is the one ``wanted`` describes (paths compared after resolving)."""
    paths = ("output_dir", "data_path", "warm_start_adapter")
    if not all(_same_path(getattr(running, p), getattr(wanted, p)) for p in paths):
        return False
    blank = dict.fromkeys(paths, "-")
    return running.model_copy(update=blank) == wanted.model_copy(update=blank)


async def start_or_attach(trainer: TrainerClient, config: TrainingConfig) -> str:
    """Start a training job, or re-attach to it if it is still running; the job id.

    A controller that was stopped (a pod evicted, a laptop closed) and resumed finds the trainer
    still training the same round: StartTraining answers ALREADY_EXISTS, and the job with the
    same config is watched instead of failing the run.
    """
    try:
        return (await trainer.start(config)).job_id
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        for job in await trainer.list_jobs():
            if not job.state.ended and same_training(job.config, config):
                log.info("re-attaching to training job %s, still running into %s", job.job_id, config.output_dir)
                return job.job_id
        raise
