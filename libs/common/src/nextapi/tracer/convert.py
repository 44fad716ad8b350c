"""The tracer's domain types to and from its protos: the one mapping the servicer and the client share."""

from __future__ import annotations

from collections.abc import Sequence

from nextapi.tracer import plain
from nextapi.tracer.types import IoTests, Limits, TestOutcome, TraceEvent, TraceOptions, TraceResult, Verdict
from nextapi.tracer.v1 import tracer_service_pb2 as pb

_TO_PROTO = {v: pb.Verdict.Value("VERDICT_" + v.value) for v in Verdict}
_FROM_PROTO = {number: v for v, number in _TO_PROTO.items()}


def verdict_to_proto(verdict: Verdict) -> pb.Verdict.ValueType:
    return _TO_PROTO[verdict]


def verdict_from_proto(value: pb.Verdict.ValueType) -> Verdict:
    verdict = _FROM_PROTO.get(value)
    if verdict is None:
        return Verdict(pb.Verdict.Name(value).removeprefix("VERDICT_"))  # names the unknown value
    return verdict


def limits_to_proto(limits: Limits | None) -> pb.Limits:
    if limits is None:
        return pb.Limits()  # zeros: the server's defaults
    return pb.Limits(timeout_s=limits.timeout_s, memory_mb=limits.memory_mb, output_bytes=limits.output_bytes)


def outcome_to_proto(outcome: TestOutcome) -> pb.TestResult:
    return pb.TestResult(
        verdict=verdict_to_proto(outcome.verdict),
        message=outcome.message,
        duration_s=outcome.duration_s,
        output_json=outcome.output_json,
    )


def outcome_from_proto(t: pb.TestResult) -> TestOutcome:
    return TestOutcome(verdict_from_proto(t.verdict), t.message, t.duration_s, t.output_json)


def io_tests_from_proto(io: pb.IoTests) -> IoTests:
    """Inputs and expected outputs stay in their JSON encoding (the engine decodes them lazily)."""
    return IoTests(
        io.entry_point,
        [],
        [],
        io.atol,
        list(io.inputs_json),
        list(io.expected_json),
        oracle=io.oracle,
        return_outputs=io.return_outputs,
    )


def io_requests(
    program: str, io: IoTests, limits: Limits | None, max_request_bytes: int
) -> list[pb.RunTestsRequest]:
    """The RunTests requests for an io suite, split so that none exceeds ``max_request_bytes``."""
    inputs = io.inputs_json if io.inputs_json is not None else [plain.dumps(a) for a in io.inputs]
    expected = [plain.dumps(e) for e in io.expected]
    chunks: list[tuple[int, int]] = []
    start, size = 0, len(program)
    for i in range(len(inputs)):
        item = len(inputs[i]) + (len(expected[i]) if expected else 0) + 16
        if i > start and size + item > max_request_bytes:
            chunks.append((start, i))
            start, size = i, len(program)
        size += item
    chunks.append((start, len(inputs)))
    return [
        pb.RunTestsRequest(
            program=program,
            limits=limits_to_proto(limits),
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


def statements_request(
    program: str, tests: Sequence[str], limits: Limits | None, entry_points: Sequence[str]
) -> pb.RunTestsRequest:
    return pb.RunTestsRequest(
        program=program,
        tests=[pb.StatementTest(source=t) for t in tests],
        limits=limits_to_proto(limits),
        entry_points=list(entry_points),
    )


def trace_options_from_proto(request: pb.TraceRequest) -> TraceOptions:
    defaults = TraceOptions()
    return TraceOptions(
        format=request.format or defaults.format,
        max_steps=request.max_steps or defaults.max_steps,
        max_value_chars=request.max_value_chars or defaults.max_value_chars,
        max_states_per_line=request.max_states_per_line or defaults.max_states_per_line,
    )


def trace_request(
    program: str, test: str, options: TraceOptions, limits: Limits | None, entry_points: Sequence[str]
) -> pb.TraceRequest:
    return pb.TraceRequest(
        entry_points=list(entry_points),
        program=program,
        test=pb.StatementTest(source=test),
        format=options.format,
        limits=limits_to_proto(limits),
        max_steps=options.max_steps,
        max_value_chars=options.max_value_chars,
        max_states_per_line=options.max_states_per_line,
    )


def trace_to_proto(result: TraceResult) -> pb.TraceResponse:
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


def trace_from_proto(resp: pb.TraceResponse) -> TraceResult:
    events = [TraceEvent(e.step, e.source, e.line, e.name, e.value, e.kind) for e in resp.events]
    return TraceResult(resp.rendered, events, outcome_from_proto(resp.test), resp.truncated, resp.format)
