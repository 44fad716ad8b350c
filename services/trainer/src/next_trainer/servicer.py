"""TrainerService over gRPC: translates between protos and the job manager, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from next_trainer.job_manager import JobManager
from nextapi.trainer.convert import config_from_spec, job_to_proto
from nextapi.trainer.v1 import trainer_service_pb2 as pb
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TrainerService"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class TrainerServicer(pb_grpc.TrainerServiceServicer):
    def __init__(self, manager: JobManager) -> None:
        self.manager = manager

    async def StartTraining(self, request: pb.StartTrainingRequest, context: Context) -> pb.StartTrainingResponse:
        status = await self.manager.start(config_from_spec(request.spec))
        return pb.StartTrainingResponse(job=job_to_proto(status))

    async def WatchTraining(
        self, request: pb.WatchTrainingRequest, context: Context
    ) -> AsyncIterator[pb.WatchTrainingResponse]:
        async for status in self.manager.watch(request.job_id):
            yield pb.WatchTrainingResponse(job=job_to_proto(status))

    async def GetJob(self, request: pb.GetJobRequest, context: Context) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=job_to_proto(self.manager.get(request.job_id)))

    async def CancelJob(self, request: pb.CancelJobRequest, context: Context) -> pb.CancelJobResponse:
        return pb.CancelJobResponse(job=job_to_proto(await self.manager.cancel(request.job_id)))

    async def ListJobs(self, request: pb.ListJobsRequest, context: Context) -> pb.ListJobsResponse:
        return pb.ListJobsResponse(jobs=[job_to_proto(s) for s in self.manager.jobs()])
