"""TracerService over gRPC: translates between protos and the engine, nothing more."""

from __future__ import annotations

from typing import Any

import grpc

from next_tracer.engine import TracerEngine
from nextapi.tracer import convert
from nextapi.tracer.types import Limits, RunResult
from nextapi.tracer.v1 import tracer_service_pb2 as pb
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TracerService"].full_name


def _deadline(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    remaining = context.time_remaining()
    return remaining if remaining is not None else None


class TracerServicer(pb_grpc.TracerServiceServicer):
    def __init__(self, engine: TracerEngine) -> None:
        self.engine = engine

    def _limits(self, limits: pb.Limits) -> Limits:
        return self.engine.limits(limits.timeout_s, limits.memory_mb, limits.output_bytes)

    async def RunTests(
        self, request: pb.RunTestsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RunTestsResponse:
        limits = self._limits(request.limits)
        result: RunResult
        if request.HasField("io_tests"):
            result = await self.engine.run_io_tests(
                request.program,
                convert.io_tests_from_proto(request.io_tests),
                limits,
                _deadline(context),
            )
        else:
            result = await self.engine.run_tests(
                request.program,
                [t.source for t in request.tests],
                limits,
                _deadline(context),
                entry_points=request.entry_points,
            )
        return pb.RunTestsResponse(
            verdict=convert.verdict_to_proto(result.verdict),
            tests=[convert.outcome_to_proto(t) for t in result.tests],
            output=result.output,
        )

    async def Trace(self, request: pb.TraceRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.TraceResponse:
        options = convert.trace_options_from_proto(request)
        result = await self.engine.trace(
            request.program,
            request.test.source,
            options,
            self._limits(request.limits),
            _deadline(context),
            entry_points=request.entry_points,
        )
        return convert.trace_to_proto(result)

    async def ListFormats(
        self, request: pb.ListFormatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListFormatsResponse:
        return pb.ListFormatsResponse(
            formats=[pb.TraceFormatInfo(name=n, description=d) for n, d in self.engine.formats.describe()]
        )
