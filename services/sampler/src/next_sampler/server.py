"""Start the sampler gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import grpc

from next_common.grpc_server import ServiceServer, announce, build_server, serve_until_signal
from next_sampler.engine import SamplerEngine
from next_sampler.servicer import SERVICE_NAME, SamplerServicer
from next_sampler.settings import SamplerSettings
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc


async def start_server(
    settings: SamplerSettings, engine: SamplerEngine | None = None
) -> tuple[ServiceServer, SamplerEngine]:
    """Build the backends first: a misconfigured backend fails here, not at the first request."""
    engine = engine or SamplerEngine(settings)

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_SamplerServiceServicer_to_server(SamplerServicer(engine), server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME])
    return service, engine


async def serve(settings: SamplerSettings) -> None:
    service, _ = await start_server(settings)
    announce("sampler", service, settings, "backends: %s" % ", ".join(settings.backends))
    await serve_until_signal(service, settings.grace_period_s)
