"""Start the tracer gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import grpc

from next_common.grpc_server import ServiceServer, announce, build_server, serve_until_signal
from next_tracer.engine import TracerEngine
from next_tracer.servicer import SERVICE_NAME, TracerServicer
from next_tracer.settings import TracerSettings
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc


async def start_server(
    settings: TracerSettings, engine: TracerEngine | None = None
) -> tuple[ServiceServer, TracerEngine]:
    """Check the sandbox, then bind; a sandbox that cannot start fails here, not at the first request."""
    engine = engine or TracerEngine(settings)
    await engine.start()

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_TracerServiceServicer_to_server(TracerServicer(engine), server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME])
    return service, engine


async def serve(settings: TracerSettings) -> None:
    service, engine = await start_server(settings)
    announce("tracer", service, settings, "sandbox=%s, concurrency=%d" % (settings.sandbox, settings.max_concurrency))
    await serve_until_signal(service, settings.grace_period_s)
    await engine.sandbox.close()
