"""The tgi backend against the TGI-protocol test server: seeds, retries, adapters, in-flight cap."""

from __future__ import annotations

import datetime

import httpx
import pytest

from next_common.errors import InvalidArgumentError, NotFoundError, UnavailableError
from next_sampler.backends.http import retry_after_s
from next_sampler.engine import SamplerEngine, backend_registry
from next_sampler.settings import SamplerSettings
from nextapi.sampler.types import SamplingParams
from tests.sampler.tgi_protocol_server import TgiProtocolServer


def engine(server: TgiProtocolServer, **overrides: object) -> SamplerEngine:
    settings = SamplerSettings(
        backends=["tgi"],
        default_backend="tgi",
        tgi_url=server.url,  # type: ignore[arg-type]
        tgi_adapters=["round-1"],
        tgi_backoff_s=0.01,
        **overrides,
    )
    return SamplerEngine(settings, backend_registry(load_entry_points=False))


async def test_n_samples_are_seeded_requests_with_explicit_fields() -> None:
    with TgiProtocolServer() as server:
        out = await engine(server).sample(
            ["def f():"], SamplingParams(n=4, temperature=0.8, top_p=0.95, seed=10), adapter="round-1"
        )
    assert sorted(r["parameters"]["seed"] for r in server.requests) == [10, 11, 12, 13]
    for request in server.requests:
        params = request["parameters"]
        assert params["do_sample"] is True and params["details"] is True and params["adapter_id"] == "round-1"
        assert "best_of" not in params
    assert [c.text.split("|")[:2] for c in out] == [["round-1", "seed=%d" % s] for s in (10, 11, 12, 13)]
    assert {c.adapter for c in out} == {"round-1"} and {c.finish_reason for c in out} == {"length"}


async def test_greedy_sends_no_temperature() -> None:
    with TgiProtocolServer() as server:
        await engine(server).sample(["x"], SamplingParams())
    (params,) = [r["parameters"] for r in server.requests]
    assert params["do_sample"] is False and "temperature" not in params and "adapter_id" not in params


async def test_429_and_5xx_are_retried_422_is_not() -> None:
    with TgiProtocolServer() as server:
        server.fail_next = [429, 503, 424]
        out = await engine(server).sample(["x"], SamplingParams())
        assert out[0].text.startswith("base|") and len(server.requests) == 4
    with TgiProtocolServer(max_new_tokens_limit=16) as server:
        with pytest.raises(InvalidArgumentError, match="max_new_tokens"):
            await engine(server).sample(["x"], SamplingParams(max_new_tokens=100))
        assert len(server.requests) == 1


async def test_a_429_s_retry_after_is_honoured() -> None:
    with TgiProtocolServer() as server:
        server.fail_next, server.retry_after = [429], "1"
        out = await engine(server).sample(["x"], SamplingParams())
        assert out[0].text.startswith("base|") and len(server.requests) == 2
        assert server.times[1] - server.times[0] >= 0.95  # the backoff alone would be 0.01 s


def test_retry_after_reads_seconds_and_dates_and_is_capped() -> None:
    from email.utils import format_datetime

    def response(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value} if value else {})

    soon = format_datetime(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30), usegmt=True)
    assert retry_after_s(response("2.5")) == 2.5 and retry_after_s(response("")) is None
    assert 25 < (retry_after_s(response(soon)) or 0) <= 30
    assert retry_after_s(response("86400")) == 120.0 and retry_after_s(response("soon")) is None


async def test_retries_are_bounded() -> None:
    with TgiProtocolServer() as server:
        server.fail_next = [503] * 10
        with pytest.raises(UnavailableError, match="failed after 3 attempts"):
            await engine(server, tgi_retries=2).sample(["x"], SamplingParams())
        assert len(server.requests) == 3


async def test_in_flight_requests_stay_under_the_cap() -> None:
    with TgiProtocolServer(delay_s=0.02) as server:
        out = await engine(server, tgi_max_in_flight=3).sample(["a", "b"], SamplingParams(n=12, temperature=1.0))
    assert len(out) == 24 and server.max_in_flight <= 3 and server.max_in_flight >= 2


async def test_an_adapter_tgi_was_not_started_with_is_refused() -> None:
    # TGI would silently answer with the base model; the sampler must not let that happen.
    with TgiProtocolServer() as server:
        with pytest.raises(NotFoundError, match="no adapter 'round-2'"):
            await engine(server).sample(["x"], SamplingParams(), adapter="round-2")
        assert server.requests == []


async def test_unreachable_server_is_unavailable() -> None:
    settings = SamplerSettings(
        backends=["tgi"], default_backend="tgi", tgi_url="http://127.0.0.1:9", tgi_retries=1, tgi_backoff_s=0.01
    )
    with pytest.raises(UnavailableError, match="ConnectError"):
        await SamplerEngine(settings, backend_registry(load_entry_points=False)).sample(["x"], SamplingParams())


async def test_closing_the_engine_closes_the_tgi_client() -> None:
    # The tgi backend's close is a coroutine: a synchronous close would never run it and leak the client.
    with TgiProtocolServer() as server:
        eng = engine(server)
        await eng.sample(["x"], SamplingParams(max_new_tokens=2))
        http = eng.backends["tgi"].http  # type: ignore[attr-defined]
        assert not http._client.is_closed
        await eng.aclose()
        assert http._client.is_closed
