"""Start the trainer gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import grpc

from next_common.grpc_server import ServiceServer, announce, build_server, serve_until_signal
from next_trainer.job_manager import JobManager
from next_trainer.servicer import SERVICE_NAME, TrainerServicer
from next_trainer.settings import TrainerSettings
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc


async def start_server(settings: TrainerSettings) -> tuple[ServiceServer, JobManager]:
    manager = JobManager(settings)

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_TrainerServiceServicer_to_server(TrainerServicer(manager), server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME])
    return service, manager


async def serve(settings: TrainerSettings) -> None:
    service, manager = await start_server(settings)
    announce("trainer", service, settings)
    try:
        await serve_until_signal(service, settings.grace_period_s)
    finally:
        await manager.close()  # stopped jobs resume from their checkpoints when started again
