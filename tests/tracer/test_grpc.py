"""The service over a real loopback channel: results, status codes, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from next_common.grpc_server import ServiceServer
from next_tracer.engine import TracerEngine
from next_tracer.formats.registry import FormatRegistry
from next_tracer.server import start_server
from next_tracer.servicer import SERVICE_NAME
from nextapi.tracer.v1 import tracer_service_pb2 as pb
from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc
from tests.conftest import REPO, make_settings
from tests.tracer.test_sandbox import _jailed_processes


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ServiceServer]:
    settings = make_settings()
    service, _ = await start_server(settings, TracerEngine(settings, FormatRegistry(load_entry_points=False)))
    yield service
    await service.stop(0)


@pytest.fixture
async def stub(server: ServiceServer) -> AsyncIterator[pb_grpc.TracerServiceStub]:
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % server.port) as channel:
        yield pb_grpc.TracerServiceStub(channel)


PROGRAM = "def add(a, b):\n    return a + b\n"


async def test_run_tests(stub: pb_grpc.TracerServiceStub) -> None:
    resp = await stub.RunTests(
        pb.RunTestsRequest(
            program=PROGRAM,
            tests=[pb.StatementTest(source="assert add(1, 2) == 3"), pb.StatementTest(source="assert 0")],
        )
    )
    assert [t.verdict for t in resp.tests] == [pb.VERDICT_PASSED, pb.VERDICT_FAILED]
    assert resp.verdict == pb.VERDICT_FAILED


async def test_io_tests(stub: pb_grpc.TracerServiceStub) -> None:
    io = pb.IoTests(
        entry_point="add",
        inputs_json=["[1, 2]", '[{"$tuple": [1]}, {"$tuple": [2]}]'],
        expected_json=["3", '{"$tuple": [1, 2]}'],
    )
    resp = await stub.RunTests(pb.RunTestsRequest(program=PROGRAM, io_tests=io))
    assert resp.verdict == pb.VERDICT_PASSED


async def test_syntax_error_is_a_normal_result(stub: pb_grpc.TracerServiceStub) -> None:
    resp = await stub.RunTests(pb.RunTestsRequest(program="def (:", tests=[pb.StatementTest(source="pass")]))
    assert resp.tests[0].verdict == pb.VERDICT_ERROR and "SyntaxError" in resp.tests[0].message


async def test_trace_and_list_formats(stub: pb_grpc.TracerServiceStub) -> None:
    resp = await stub.Trace(pb.TraceRequest(program=PROGRAM, test=pb.StatementTest(source="assert add(1, 2) == 4")))
    assert resp.rendered.startswith("def add(a, b):  # (0) a=1; b=2;")
    assert resp.verdict == pb.VERDICT_FAILED and resp.format == "next-inline" and resp.events
    formats = await stub.ListFormats(pb.ListFormatsRequest())
    assert {"next-inline", "scratchpad", "json"} <= {f.name for f in formats.formats}


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (pb.TraceRequest(program=PROGRAM, test=pb.StatementTest(source="pass"), format="nope"), "available: json"),
        (pb.RunTestsRequest(program="x" * 2_000_000, tests=[pb.StatementTest(source="pass")]), "larger than"),
        (pb.RunTestsRequest(program=PROGRAM), "no tests"),
        (
            pb.RunTestsRequest(
                program=PROGRAM, tests=[pb.StatementTest(source="pass")], limits=pb.Limits(timeout_s=1e6)
            ),
            "timeout_s",
        ),
        (
            pb.RunTestsRequest(
                program=PROGRAM, io_tests=pb.IoTests(entry_point="add", inputs_json=["[1"], expected_json=["1"])
            ),
            "inputs_json[0]",
        ),
        (pb.RunTestsRequest(program="x\x00", tests=[pb.StatementTest(source="pass")]), "NUL"),
        (
            pb.RunTestsRequest(
                program=PROGRAM, io_tests=pb.IoTests(entry_point="add", inputs_json=["[1, 2]"], expected_json=["{bad"])
            ),
            "expected_json[0]",
        ),
    ],
)
async def test_bad_input_is_invalid_argument(stub: pb_grpc.TracerServiceStub, request_: object, needle: str) -> None:
    method = stub.Trace if isinstance(request_, pb.TraceRequest) else stub.RunTests
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await method(request_)  # type: ignore[operator]
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (info.value.details() or "")


async def test_non_utf8_program_is_invalid_argument(server: ServiceServer) -> None:
    # Hand-encode a RunTestsRequest whose `program` field (1) holds bytes that are not UTF-8.
    raw = b"\x0a\x03\xff\xfe\xfd" + pb.RunTestsRequest(tests=[pb.StatementTest(source="pass")]).SerializeToString()
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % server.port) as channel:
        call = channel.unary_unary("/nextapi.tracer.v1.TracerService/RunTests")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(raw)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_deadline_is_honoured(stub: pb_grpc.TracerServiceStub) -> None:
    req = pb.RunTestsRequest(
        program="x = 1\n",
        tests=[pb.StatementTest(source="import time\ntime.sleep(30)")],
        limits=pb.Limits(timeout_s=30),
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.RunTests(req, timeout=1.0)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - started < 10
    # the jail was killed with the RPC, not left sleeping
    for _ in range(50):
        if not _jailed_processes():
            break
        await asyncio.sleep(0.1)
    assert _jailed_processes() == []


async def test_full_queue_is_resource_exhausted() -> None:
    settings = make_settings(max_concurrency=1, max_queue=0)
    service, _ = await start_server(settings, TracerEngine(settings, FormatRegistry(load_entry_points=False)))
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            stub = pb_grpc.TracerServiceStub(channel)
            req = pb.RunTestsRequest(program="x = 1\n", tests=[pb.StatementTest(source="import time\ntime.sleep(1)")])
            results = await asyncio.gather(*(stub.RunTests(req) for _ in range(3)), return_exceptions=True)
        codes = [r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        assert any(isinstance(r, pb.RunTestsResponse) for r in results)
    finally:
        await service.stop(0)


async def test_health_and_reflection(server: ServiceServer) -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % server.port) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        names: list[str] = []
        async for r in refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
            names += [s.name for s in r.list_services_response.service]
        assert SERVICE_NAME in names


def remote_run_tests(port: int, test: str) -> list[str]:
    example = str(REPO / "examples" / "separate_odd_and_even.py")
    target = "127.0.0.1:%d" % port
    return [sys.executable, "-m", "next_tracer", "run-tests", example, "--target", target, "--json", "--test", test]


def _descendants(root: int) -> set[int]:
    """Live processes under ``root`` (by parent pid), jailed ones included."""
    parents: dict[int, int] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % pid) as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(pid)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_serve_cli_exits_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "next_tracer", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "TRACER_HOST": "127.0.0.1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on port" in line, proc.stderr.read() if proc.stderr else ""
        port = int(line.rsplit(" ", 1)[1])
        out = subprocess.run(
            remote_run_tests(port, "assert separate_odd_and_even([]) == ([], [])"), capture_output=True, text=True
        )
        assert '"verdict": "PASSED"' in out.stdout, out.stderr
        # an RPC in flight when SIGTERM arrives still gets its answer
        idle = len(_descendants(proc.pid))
        slow = subprocess.Popen(remote_run_tests(port, "import time\ntime.sleep(2)"), stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(_descendants(proc.pid)) <= idle:  # in flight: a job and a program process run in a jail
            assert time.monotonic() < deadline and slow.poll() is None, "the slow RPC never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        assert '"verdict": "PASSED"' in slow.communicate(timeout=30)[0]
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()


async def test_metrics_count_executions_and_verdicts(stub: pb_grpc.TracerServiceStub) -> None:
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("next_tracer_test_verdicts_total", {"verdict": "PASSED"}) or 0.0
    await stub.RunTests(pb.RunTestsRequest(program=PROGRAM, tests=[pb.StatementTest(source="assert add(1, 1) == 2")]))
    after = REGISTRY.get_sample_value("next_tracer_test_verdicts_total", {"verdict": "PASSED"})
    assert after == before + 1
    assert (REGISTRY.get_sample_value("next_tracer_executions_total", {"kind": "run_tests"}) or 0) >= 1


async def test_malformed_plain_value_in_an_input_is_an_error_verdict(stub: pb_grpc.TracerServiceStub) -> None:
    io = pb.IoTests(entry_point="add", inputs_json=['[{"$nope": 1}, 2]', "[1, 2]"], expected_json=["3", "3"])
    resp = await stub.RunTests(pb.RunTestsRequest(program=PROGRAM, io_tests=io))
    assert [t.verdict for t in resp.tests] == [pb.VERDICT_ERROR, pb.VERDICT_PASSED]
    assert "unknown plain-value tag" in resp.tests[0].message


async def test_server_fails_at_start_when_the_sandbox_cannot_work() -> None:
    from next_common.errors import UnavailableError

    settings = make_settings(nsjail_path="/nonexistent/nsjail")
    with pytest.raises(UnavailableError, match="nsjail binary not found"):
        await start_server(settings, TracerEngine(settings, FormatRegistry(load_entry_points=False)))
    out = subprocess.run(
        [sys.executable, "-m", "next_tracer", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env={**os.environ, "TRACER_NSJAIL_PATH": "/nonexistent/nsjail"},
        timeout=60,
    )
    assert out.returncode == 2 and "nsjail binary not found" in out.stderr


async def test_io_outputs_can_be_returned(stub: pb_grpc.TracerServiceStub) -> None:
    io = pb.IoTests(
        entry_point="add", inputs_json=['[{"$tuple": [1]}, {"$tuple": [2]}]', '["a", 1]'], return_outputs=True
    )
    resp = await stub.RunTests(pb.RunTestsRequest(program=PROGRAM, io_tests=io))
    assert [t.verdict for t in resp.tests] == [pb.VERDICT_PASSED, pb.VERDICT_ERROR]
    assert resp.tests[0].output_json == '{"$tuple":[1,2]}'
    assert "TypeError" in resp.tests[1].message
