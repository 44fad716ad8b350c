"""Python client: the same calls in-process (no server) or against ``HOST:PORT``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import grpc

from next_tracer.engine import TracerEngine
from next_tracer.model import IoTests, Limits, RunResult, TestOutcome, TraceEvent, TraceOptions, TraceResult, Verdict
from next_tracer.runtime import plain
from next_tracer.servicer import verdict_from_proto
from next_tracer.settings import TracerSettings
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


class InProcessTracerClient:
    """Runs the engine in this process: sandboxed executions without a server."""

    def __init__(self, settings: TracerSettings | None = None, engine: TracerEngine | None = None) -> None:
        self.engine = engine or TracerEngine(settings or TracerSettings())
        self._started = False

    async def _ready(self) -> TracerEngine:
        if not self._started:
            await self.engine.start()
            self._started = True
        return self.engine

    async def run_tests(
        self, program: str, tests: list[str], limits: Limits | None = None, entry_points: Sequence[str] = ()
    ) -> RunResult:
        return await (await self._ready()).run_tests(program, tests, limits, entry_points=entry_points)

    async def run_io_tests(self, program: str, io: IoTests, limits: Limits | None = None) -> RunResult:
        return await (await self._ready()).run_io_tests(program, io, limits)

    async def trace(
        self,
        program: str,
        test: str,
        options: TraceOptions | None = None,
        limits: Limits | None = None,
        entry_points: Sequence[str] = (),
    ) -> TraceResult:
        return await (await self._ready()).trace(program, test, options, limits, entry_points=entry_points)

    async def close(self) -> None:
        return None


def _limits(limits: Limits | None) -> pb.Limits:
    if limits is None:
        return pb.Limits()
    return pb.Limits(timeout_s=limits.timeout_s, memory_mb=limits.memory_mb, output_bytes=limits.output_bytes)


def _outcome(t: pb.TestResult) -> TestOutcome:
    return TestOutcome(verdict_from_proto(t.verdict), t.message, t.duration_s, t.output_json)


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
        req = pb.RunTestsRequest(
            program=program,
            tests=[pb.StatementTest(source=t) for t in tests],
            limits=_limits(limits),
            entry_points=list(entry_points),
        )
        resp = await self.stub.RunTests(req, timeout=self.timeout_s)
        return RunResult(verdict_from_proto(resp.verdict), [_outcome(t) for t in resp.tests], resp.output)

    async def run_io_tests(self, program: str, io: IoTests, limits: Limits | None = None) -> RunResult:
        """Large suites are split into requests of at most ``max_request_bytes`` (run concurrently)."""
        return await self.run_io_requests(self.io_requests(program, io, limits))

    def io_requests(self, program: str, io: IoTests, limits: Limits | None = None) -> list[pb.RunTestsRequest]:
        """The RunTests requests for an io suite, split by size (prepare once, send many times)."""
        inputs = io.inputs_json if io.inputs_json is not None else [plain.dumps(a) for a in io.inputs]
        expected = [plain.dumps(e) for e in io.expected]
        chunks: list[tuple[int, int]] = []
        start, size = 0, len(program)
        for i in range(len(inputs)):
            item = len(inputs[i]) + (len(expected[i]) if expected else 0) + 16
            if i > start and size + item > self.max_request_bytes:
                chunks.append((start, i))
                start, size = i, len(program)
            size += item
        chunks.append((start, len(inputs)))
        return [
            pb.RunTestsRequest(
                program=program,
                limits=_limits(limits),
                io_tests=pb.IoTests(
                    entry_point=io.entry_point,
                    inputs_json=inputs[a:b],
                    expected_json=expected[a:b],
                    atol=io.atol,
                    oracle=io.oracle,
                    return_outputs=io.return_outputs,
                ),
            )
            for a, b in chunks
        ]

    async def run_io_requests(self, requests: list[pb.RunTestsRequest]) -> RunResult:
        responses = await asyncio.gather(*(self.stub.RunTests(r, timeout=self.timeout_s) for r in requests))
        tests = [_outcome(t) for resp in responses for t in resp.tests]
        verdict = Verdict.PASSED
        for t in tests:
            if t.verdict is not Verdict.PASSED:
                verdict = t.verdict
                break
        return RunResult(verdict, tests, "".join(r.output for r in responses)[:4096])

    async def trace(
        self,
        program: str,
        test: str,
        options: TraceOptions | None = None,
        limits: Limits | None = None,
        entry_points: Sequence[str] = (),
    ) -> TraceResult:
        options = options or TraceOptions()
        req = pb.TraceRequest(
            entry_points=list(entry_points),
            program=program,
            test=pb.StatementTest(source=test),
            format=options.format,
            limits=_limits(limits),
            max_steps=options.max_steps,
            max_value_chars=options.max_value_chars,
            max_states_per_line=options.max_states_per_line,
        )
        resp = await self.stub.Trace(req, timeout=self.timeout_s)
        events = [TraceEvent(e.step, e.source, e.line, e.name, e.value, e.kind) for e in resp.events]
        return TraceResult(resp.rendered, events, _outcome(resp.test), resp.truncated, resp.format)

    async def close(self) -> None:
        await self.channel.close()
