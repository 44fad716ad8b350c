"""TracerService over gRPC: translates between protos and the engine, nothing more."""

from __future__ import annotations

from typing import Any

import grpc

from next_tracer.engine import TracerEngine
from next_tracer.model import IoTests, Limits, RunResult, TestOutcome, TraceOptions, Verdict
from nextapi.tracer.v1 import tracer_service_pb2 as pb
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["TracerService"].full_name


_TO_PROTO = {v: pb.Verdict.Value("VERDICT_" + v.value) for v in Verdict}
_FROM_PROTO = {number: v for v, number in _TO_PROTO.items()}


def verdict_to_proto(verdict: Verdict) -> pb.Verdict.ValueType:
    return _TO_PROTO[verdict]


def verdict_from_proto(value: pb.Verdict.ValueType) -> Verdict:
    verdict = _FROM_PROTO.get(value)
    if verdict is None:
        return Verdict(pb.Verdict.Name(value).removeprefix("VERDICT_"))  # names the unknown value
    return verdict


def outcome_to_proto(outcome: TestOutcome) -> pb.TestResult:
    return pb.TestResult(
        verdict=verdict_to_proto(outcome.verdict),
        message=outcome.message,
        duration_s=outcome.duration_s,
        output_json=outcome.output_json,
    )


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
            io = request.io_tests
            result = await self.engine.run_io_tests(
                request.program,
                IoTests(
                    io.entry_point,
                    [],
                    [],
                    io.atol,
                    list(io.inputs_json),
                    list(io.expected_json),
                    oracle=io.oracle,
                    return_outputs=io.return_outputs,
                ),
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
            verdict=verdict_to_proto(result.verdict),
            tests=[outcome_to_proto(t) for t in result.tests],
            output=result.output,
        )

    async def Trace(self, request: pb.TraceRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.TraceResponse:
        defaults = TraceOptions()
        options = TraceOptions(
            format=request.format or defaults.format,
            max_steps=request.max_steps or defaults.max_steps,
            max_value_chars=request.max_value_chars or defaults.max_value_chars,
            max_states_per_line=request.max_states_per_line or defaults.max_states_per_line,
        )
        result = await self.engine.trace(
            request.program,
            request.test.source,
            options,
            self._limits(request.limits),
            _deadline(context),
            entry_points=request.entry_points,
        )
        return pb.TraceResponse(
            rendered=result.rendered,
            events=[
                pb.TraceEvent(step=e.step, source=e.source, line=e.line, name=e.name, value=e.value, kind=e.kind)
                for e in result.events
            ],
            verdict=verdict_to_proto(result.test.verdict),
            test=outcome_to_proto(result.test),
            truncated=result.truncated,
            format=result.format,
        )

    async def ListFormats(
        self, request: pb.ListFormatsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListFormatsResponse:
        return pb.ListFormatsResponse(
            formats=[pb.TraceFormatInfo(name=n, description=d) for n, d in self.engine.formats.describe()]
        )
