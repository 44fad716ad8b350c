"""Prometheus metrics every service shares: per-RPC counts and latency, and the HTTP endpoint.

``RpcMetricsInterceptor`` is installed by ``build_server`` outside the error interceptor, so an
RPC is counted with the status its caller receives (a domain error that the error interceptor
turns into NOT_FOUND is counted as NOT_FOUND, not as an exception). The names and labels follow
go-grpc-prometheus, so its dashboards and alerts work unchanged:

- ``grpc_server_started_total{grpc_service, grpc_method, grpc_type}``
- ``grpc_server_handled_total{grpc_service, grpc_method, grpc_type, grpc_code}``
- ``grpc_server_handling_seconds{grpc_service, grpc_method, grpc_type}`` (a histogram, from the
  handler's start to its final status; for a streaming RPC, to the end of the stream)

``grpc_type`` is ``unary``, ``server_stream``, ``client_stream`` or ``bidi_stream``; ``grpc_code``
the status name (``OK``, ``NOT_FOUND``, ``CANCELLED``...). Methods the server does not implement
are not counted, so a client cannot grow the label sets.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram, start_http_server

log = logging.getLogger(__name__)

_LABELS = ("grpc_service", "grpc_method", "grpc_type")
# From health checks (milliseconds) to training watches and sampling streams (hours).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)

STARTED = Counter("grpc_server_started_total", "RPCs started on the server", _LABELS)
HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed on the server, by final status code", (*_LABELS, "grpc_code")
)
HANDLING = Histogram(
    "grpc_server_handling_seconds", "Seconds from an RPC's start to its final status", _LABELS, buckets=BUCKETS
)


def split_method(full_method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method


def final_code(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None) -> grpc.StatusCode:
    """The status the caller receives: what the handler set or aborted with, else OK, CANCELLED or UNKNOWN."""
    if exc is None or isinstance(exc, grpc.aio.AbortError):
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            return code
        return grpc.StatusCode.OK if exc is None else grpc.StatusCode.UNKNOWN
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # the caller went away or the deadline passed
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN  # what gRPC answers for an exception no interceptor mapped


class _Observation:
    def __init__(self, service: str, method: str, kind: str) -> None:
        self.labels = (service, method, kind)
        self.started = time.perf_counter()
        STARTED.labels(*self.labels).inc()

    def done(self, context: grpc.aio.ServicerContext[Any, Any], exc: BaseException | None) -> None:
        HANDLING.labels(*self.labels).observe(time.perf_counter() - self.started)
        HANDLED.labels(*self.labels, final_code(context, exc).name).inc()


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts every RPC by its final status and times it; unary and streaming alike."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # UNIMPLEMENTED: not counted (method names would come from clients)
        service, method = split_method(handler_call_details.method)
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _single(handler.unary_unary, service, method, "unary"), **options
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _single(handler.stream_unary, service, method, "client_stream"), **options
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream, service, method, "server_stream"), **options
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                _stream(handler.stream_stream, service, method, "bidi_stream"), **options
            )
        return handler


def _single(inner: Any, service: str, method: str, kind: str) -> Any:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        seen = _Observation(service, method, kind)
        try:
            result = inner(request, context)
            if inspect.isawaitable(result):
                result = await result
        except BaseException as exc:
            seen.done(context, exc)
            raise
        seen.done(context, None)
        return result

    return wrapped


def _stream(inner: Any, service: str, method: str, kind: str) -> Any:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        seen = _Observation(service, method, kind)
        try:
            result = inner(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            elif inspect.isawaitable(result):  # a handler that writes with context.write()
                await result
            elif result is not None:
                for item in result:
                    yield item
        except BaseException as exc:
            seen.done(context, exc)
            raise
        seen.done(context, None)

    return wrapped


_served: dict[int, int] = {}
_served_lock = threading.Lock()


def serve_metrics(port: int, addr: str = "0.0.0.0") -> int:
    """Serve ``/metrics`` over HTTP on ``port`` (0: a free one); returns the port. Once per process
    and port: the controller's ``serve`` and the runs it executes ask for the same port."""
    with _served_lock:
        if port and port in _served:
            return _served[port]
        server, _ = start_http_server(port, addr)
        bound = int(server.server_port)
        _served[port or bound] = bound
        log.info("metrics on http://%s:%d/metrics", addr, bound)
        return bound
