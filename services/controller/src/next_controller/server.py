"""Start the controller gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import grpc

from next_common.grpc_server import ServiceServer, announce, build_server, serve_until_signal
from next_controller.run_manager import RunManager
from next_controller.servicer import SERVICE_NAME, ControllerServicer
from next_controller.settings import ControllerSettings
from nextapi.controller.v1 import controller_service_pb2_grpc as pb_grpc


async def start_server(settings: ControllerSettings) -> tuple[ServiceServer, RunManager]:
    manager = RunManager(settings)

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_ControllerServiceServicer_to_server(ControllerServicer(manager), server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME])
    return service, manager


async def serve(settings: ControllerSettings) -> None:
    service, manager = await start_server(settings)
    announce("controller", service, settings)
    try:
        await serve_until_signal(service, settings.grace_period_s)
    finally:
        await manager.close()  # a stopped run resumes from its run directory when started again
