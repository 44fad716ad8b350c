"""Start the tracer gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import logging

import grpc
from prometheus_client import start_http_server

from next_common.grpc_server import ServiceServer, build_server, serve_until_signal
from next_tracer.engine import TracerEngine
from next_tracer.servicer import SERVICE_NAME, TracerServicer
from next_tracer.settings import TracerSettings
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


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
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    service, engine = await start_server(settings)
    log.info(
        "tracer listening on port %d (sandbox=%s, concurrency=%d)",
        service.port,
        settings.sandbox,
        settings.max_concurrency,
    )
    print("tracer listening on port %d" % service.port, flush=True)
    await serve_until_signal(service, settings.grace_period_s)
    await engine.sandbox.close()
