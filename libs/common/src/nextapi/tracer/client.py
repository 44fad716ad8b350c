"""The tracer client: what callers code against (``TracerClient``) and its gRPC implementation.

Depends on the generated API and the tracer's domain types only, so a caller (the controller,
next-tasks, your own tool) installs no sandbox and loads no server. The in-process
implementation, which runs the engine itself, is ``next_tracer.inprocess`` (server package).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import grpc

from nextapi.tracer import convert
from nextapi.tracer.types import IoTests, Limits, RunResult, TraceOptions, TraceResult
from nextapi.tracer.v1 import tracer_service_pb2 as pb
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc


class TracerClient(Protocol):
    async def run_tests(
        self, program: str, tests: list[str], limits: Limits | None = None, entry_points: Sequence[str] = ()
    ) -> RunResult: ...

    async def run_io_tests(self, program: str, io: IoTests, limits: Limits | None = None) -> RunResult: ...

    async def trace(
        self,
        program: str,
        test: str,
        options: TraceOptions | None = None,
        limits: Limits | None = None,
        entry_points: Sequence[str] = (),
    ) -> TraceResult: ...

    async def close(self) -> None: ...


class GrpcTracerClient:
    """Talks to a tracer server over gRPC."""

    def __init__(
        self,
        target: str,
        timeout_s: float | None = 600.0,
        max_request_bytes: int = 32 << 20,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """``channel_options`` e.g. a service config with round robin and retries (see the controller)."""
        self.max_request_bytes = max_request_bytes
        options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]
        self.channel = grpc.aio.insecure_channel(target, options=[*options, *channel_options])
        self.stub = pb_grpc.TracerServiceStub(self.channel)
        self.timeout_s = timeout_s

    async def run_tests(
        self, program: str, tests: list[str], limits: Limits | None = None, entry_points: Sequence[str] = ()
    ) -> RunResult:
        req = convert.statements_request(program, tests, limits, entry_points)
        resp = await self.stub.RunTests(req, timeout=self.timeout_s)
        return RunResult(
            convert.verdict_from_proto(resp.verdict), [convert.outcome_from_proto(t) for t in resp.tests], resp.output
        )

    async def run_io_tests(self, program: str, io: IoTests, limits: Limits | None = None) -> RunResult:
        """Large suites are split into requests of at most ``max_request_bytes`` (run concurrently)."""
        return await self.run_io_requests(self.io_requests(program, io, limits))

    def io_requests(self, program: str, io: IoTests, limits: Limits | None = None) -> list[pb.RunTestsRequest]:
        """The RunTests requests for an io suite, split by size (prepare once, send many times)."""
        return convert.io_requests(program, io, limits, self.max_request_bytes)

    async def run_io_requests(self, requests: list[pb.RunTestsRequest]) -> RunResult:
        responses = await asyncio.gather(*(self.stub.RunTests(r, timeout=self.timeout_s) for r in requests))
        tests = [convert.outcome_from_proto(t) for resp in responses for t in resp.tests]
        return RunResult.of(tests, "".join(r.output for r in responses)[:4096])

    async def trace(
        self,
        program: str,
        test: str,
        options: TraceOptions | None = None,
        limits: Limits | None = None,
        entry_points: Sequence[str] = (),
    ) -> TraceResult:
        req = convert.trace_request(program, test, options or TraceOptions(), limits, entry_points)
        return convert.trace_from_proto(await self.stub.Trace(req, timeout=self.timeout_s))

    async def close(self) -> None:
        await self.channel.close()
