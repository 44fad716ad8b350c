"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from next_common import errors

log = logging.getLogger(__name__)

STATUS_BY_ERROR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhaustedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED),
)


class _MalformedRequest:
    def __init__(self, reason: str) -> None:
        self.reason = reason


async def _abort(exc: Exception, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
    """End the RPC with the status for ``exc``; unknown errors are logged and become INTERNAL."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    code, message = status_for(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(code, message)


def status_for(exc: Exception) -> tuple[grpc.StatusCode, str]:
    for error_type, code in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return code, str(exc)
    return grpc.StatusCode.INTERNAL, "internal error"


class ExceptionToStatusInterceptor(grpc.aio.ServerInterceptor):
    """Wraps unary handlers so a raised domain error aborts the RPC with its status."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is not None and handler.unary_stream is not None:
            return self._wrap_stream(handler, handler_call_details.method)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = handler_call_details.method
        deserialize = handler.request_deserializer

        def safe_deserialize(data: bytes) -> Any:
            # A request protobuf cannot parse (e.g. a string field that is not UTF-8) would
            # otherwise surface as INTERNAL; keep the error and answer INVALID_ARGUMENT.
            try:
                return deserialize(data) if deserialize else data
            except Exception as exc:
                return _MalformedRequest(str(exc))

        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, _MalformedRequest):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "malformed request (string fields must be valid UTF-8): %s" % request.reason,
                )
            try:
                return await inner(request, context)  # type: ignore[arg-type]
            except Exception as exc:
                await _abort(exc, context, method)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,  # grpc.aio accepts coroutine handlers
            request_deserializer=safe_deserialize,
            response_serializer=handler.response_serializer,
        )

    @staticmethod
    def _wrap_stream(handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        inner = handler.unary_stream

        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                async for item in inner(request, context):  # type: ignore[arg-type, misc, union-attr]
                    yield item
            except Exception as exc:
                await _abort(exc, context, method)

        return grpc.unary_stream_rpc_method_handler(
            wrapped,  # grpc.aio accepts async-generator handlers
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
