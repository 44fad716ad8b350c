"""Start the sampler gRPC server (also used by tests, on port 0)."""

from __future__ import annotations

import asyncio
import logging

import grpc

from next_common.grpc_server import ServiceServer, announce, build_server, serve_until_signal
from next_sampler.engine import SamplerEngine
from next_sampler.servicer import SERVICE_NAME, SamplerServicer
from next_sampler.settings import SamplerSettings
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


async def start_server(
    settings: SamplerSettings, engine: SamplerEngine | None = None
) -> tuple[ServiceServer, SamplerEngine]:
    """Build the backends first: a misconfigured backend fails here, not at the first request."""
    engine = engine or SamplerEngine(settings)

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_SamplerServiceServicer_to_server(SamplerServicer(engine), server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME])
    return service, engine


async def start_loading(settings: SamplerSettings) -> tuple[ServiceServer, asyncio.Task[SamplerEngine]]:
    """Listen at once and say NOT_SERVING while the backends load (a model may take minutes the
    first time it is converted), then SERVING. The task fails if a backend cannot be built."""
    servicer = SamplerServicer(None)

    def add(server: grpc.aio.Server) -> None:
        pb_grpc.add_SamplerServiceServicer_to_server(servicer, server)

    service = await build_server("%s:%d" % (settings.host, settings.port), add, [SERVICE_NAME], serving=False)

    async def load() -> SamplerEngine:
        engine = await asyncio.to_thread(SamplerEngine, settings)
        servicer.engine = engine
        await service.set_serving()
        log.info("sampler ready: backends %s", ", ".join(settings.backends))
        return engine

    return service, asyncio.create_task(load(), name="sampler-load")


async def serve(settings: SamplerSettings) -> None:
    service, loading = await start_loading(settings)
    announce("sampler", service, settings, "loading backends: %s" % ", ".join(settings.backends))
    serving = asyncio.create_task(serve_until_signal(service, settings.grace_period_s))
    done, _ = await asyncio.wait({loading, serving}, return_when=asyncio.FIRST_COMPLETED)
    failed = loading.exception() if loading in done else None
    if failed is not None:
        serving.cancel()
        await service.stop(0)
        raise failed
    await serving
    loading.cancel()
    if loading.done() and not loading.cancelled() and loading.exception() is None:
        await loading.result().aclose()
