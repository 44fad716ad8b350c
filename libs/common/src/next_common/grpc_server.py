"""gRPC server wiring every service shares: health, reflection, errors, metrics, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from next_common.interceptors import ExceptionToStatusInterceptor
from next_common.metrics import RpcMetricsInterceptor, serve_metrics
from next_common.settings import ServiceSettings

log = logging.getLogger(__name__)


class ServiceServer:
    """A started gRPC server plus its health servicer."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        health_servicer: health.aio.HealthServicer,
        service_names: Sequence[str],
    ) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self.service_names = tuple(service_names)

    async def set_serving(self) -> None:
        """Report SERVING for every service (a server built with ``serving=False`` is loading)."""
        for name in (*self.service_names, ""):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


async def build_server(
    address: str,
    add_servicers: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    max_message_bytes: int = 64 * 1024 * 1024,
    serving: bool = True,
) -> ServiceServer:
    """Create and start a server with our interceptors, health checking and reflection.

    The metrics interceptor comes first, so it wraps the error interceptor and counts each RPC
    with the status the caller receives (``next_common.metrics``).

    With ``serving=False`` health says NOT_SERVING until ``set_serving()``: the port answers
    (probes and clients see "loading", not "connection refused") while a model loads."""
    server = grpc.aio.server(
        interceptors=[RpcMetricsInterceptor(), ExceptionToStatusInterceptor()],  # outermost first
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    add_servicers(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    await server.start()
    service = ServiceServer(server, port, health_servicer, service_names)
    if serving:
        await service.set_serving()
    else:
        for name in (*service_names, ""):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return service


def announce(name: str, service: ServiceServer, settings: ServiceSettings, details: str = "") -> None:
    """Start the metrics endpoint (if configured) and say where the service listens. The printed
    line ``NAME listening on port N`` is read by the controller's embedded mode to find the port."""
    if settings.metrics_port:
        serve_metrics(settings.metrics_port)
    log.info("%s listening on port %d%s", name, service.port, " (%s)" % details if details else "")
    print("%s listening on port %d" % (name, service.port), flush=True)


async def serve_until_signal(service: ServiceServer, grace_s: float) -> None:
    """Block until SIGTERM/SIGINT, then report NOT_SERVING and drain in-flight RPCs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining for up to %.1fs", grace_s)
    await service.stop(grace_s)
