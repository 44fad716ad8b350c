"""Per-RPC metrics from the common server wiring, over a real loopback channel (the sampler with
its replay backend: a cheap real service with unary and streaming RPCs), and their HTTP endpoint."""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from next_common.metrics import serve_metrics
from next_sampler.server import start_server
from nextapi.sampler.v1 import sampler_service_pb2 as pb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc
from tests.sampler.test_replay_service import PROMPTS, engine_for, recorded

SERVICE = "nextapi.sampler.v1.SamplerService"


def handled(method: str, kind: str, code: str, service: str = SERVICE) -> float:
    labels = {"grpc_service": service, "grpc_method": method, "grpc_type": kind, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


def timed(method: str, kind: str, service: str = SERVICE) -> float:
    labels = {"grpc_service": service, "grpc_method": method, "grpc_type": kind}
    return REGISTRY.get_sample_value("grpc_server_handling_seconds_count", labels) or 0.0


def started(method: str, kind: str) -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_type": kind}
    return REGISTRY.get_sample_value("grpc_server_started_total", labels) or 0.0


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[grpc.aio.Channel]:
    engine = engine_for(recorded(tmp_path))
    service, _ = await start_server(engine.settings, engine)
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            yield channel
    finally:
        await service.stop(0)


async def test_an_ok_and_an_error_unary_call_are_counted_by_their_final_status(channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.SamplerServiceStub(channel)
    ok, not_found = handled("Sample", "unary", "OK"), handled("ActivateAdapter", "unary", "NOT_FOUND")
    sample_timed, activate_timed = timed("Sample", "unary"), timed("ActivateAdapter", "unary")

    await stub.Sample(pb.SampleRequest(prompts=PROMPTS, params=pb.SamplingParams(n=2)))
    with pytest.raises(grpc.aio.AioRpcError) as info:  # NotFoundError, mapped by the error interceptor
        await stub.ActivateAdapter(pb.ActivateAdapterRequest(adapter="round-9"))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND

    # counted with the status the caller saw: the metrics interceptor wraps the error interceptor
    assert handled("Sample", "unary", "OK") == ok + 1
    assert handled("ActivateAdapter", "unary", "NOT_FOUND") == not_found + 1
    assert handled("ActivateAdapter", "unary", "UNKNOWN") == handled("ActivateAdapter", "unary", "INTERNAL") == 0
    assert timed("Sample", "unary") == sample_timed + 1 and timed("ActivateAdapter", "unary") == activate_timed + 1
    assert started("Sample", "unary") >= ok + 1


async def test_streams_are_counted_when_they_end_ok_or_with_an_error(channel: grpc.aio.Channel) -> None:
    stub = pb_grpc.SamplerServiceStub(channel)
    ok, not_found = (
        handled("SampleStream", "server_stream", "OK"),
        handled("SampleStream", "server_stream", "NOT_FOUND"),
    )
    before = REGISTRY.get_sample_value(
        "grpc_server_handling_seconds_bucket",
        {"grpc_service": SERVICE, "grpc_method": "SampleStream", "grpc_type": "server_stream", "le": "+Inf"},
    )

    request = pb.SampleRequest(prompts=PROMPTS, params=pb.SamplingParams(n=3), adapter="round-1")
    assert len([item async for item in stub.SampleStream(pb.SampleStreamRequest(request=request))]) == 6
    with pytest.raises(grpc.aio.AioRpcError) as info:  # raised inside the stream: no recorded prompt
        async for _ in stub.SampleStream(pb.SampleStreamRequest(request=pb.SampleRequest(prompts=["unknown"]))):
            pass
    assert info.value.code() is grpc.StatusCode.NOT_FOUND

    assert handled("SampleStream", "server_stream", "OK") == ok + 1
    assert handled("SampleStream", "server_stream", "NOT_FOUND") == not_found + 1
    after = REGISTRY.get_sample_value(
        "grpc_server_handling_seconds_bucket",
        {"grpc_service": SERVICE, "grpc_method": "SampleStream", "grpc_type": "server_stream", "le": "+Inf"},
    )
    assert (after or 0) == (before or 0) + 2


async def test_a_request_that_does_not_parse_counts_as_invalid_argument(channel: grpc.aio.Channel) -> None:
    before = handled("Sample", "unary", "INVALID_ARGUMENT")
    raw = channel.unary_unary("/%s/Sample" % SERVICE)  # bytes in, bytes out
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(b"\x0a\x02\xff\xfe")  # prompts[0]: two bytes that are not UTF-8
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert handled("Sample", "unary", "INVALID_ARGUMENT") == before + 1


async def test_health_checks_and_unknown_methods(channel: grpc.aio.Channel) -> None:
    health = "grpc.health.v1.Health"
    before = handled("Check", "unary", "OK", health)
    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert handled("Check", "unary", "OK", health) == before + 1

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await channel.unary_unary("/%s/NoSuchMethod" % SERVICE)(b"")
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    names = {s.labels.get("grpc_method") for m in REGISTRY.collect() for s in m.samples}
    assert "NoSuchMethod" not in names  # a client cannot add label values


async def test_the_metrics_endpoint_serves_them_over_http(channel: grpc.aio.Channel) -> None:
    await pb_grpc.SamplerServiceStub(channel).ListBackends(pb.ListBackendsRequest())
    port = serve_metrics(0)
    assert serve_metrics(port) == port  # once per port: a second caller shares the endpoint
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as resp:
        text = resp.read().decode()
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="ListBackends",grpc_service="%s",grpc_type="unary"}'
        % SERVICE
    ) in text
    assert "grpc_server_handling_seconds_bucket{" in text and "next_sampler_requests_total" in text
