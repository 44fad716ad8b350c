"""Start the trainer gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import logging

import grpc
from prometheus_client import start_http_server

from next_common.grpc_server import ServiceServer, build_server, serve_until_signal
from next_trainer.manager import JobManager
from next_trainer.servicer import SERVICE_NAME, TrainerServicer
from next_trainer.settings import TrainerSettings
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


async def start_server(settings: TrainerSettings) -> tuple[ServiceServer, JobManager]:
    manager = JobManager(settings)

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_TrainerServiceServicer_to_server(TrainerServicer(manager), server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME])
    return service, manager


async def serve(settings: TrainerSettings) -> None:
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    service, manager = await start_server(settings)
    log.info("trainer listening on port %d", service.port)
    print("trainer listening on port %d" % service.port, flush=True)
    try:
        await serve_until_signal(service, settings.grace_period_s)
    finally:
        await manager.close()  # stopped jobs resume from their checkpoints when started again
