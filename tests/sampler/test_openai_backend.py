"""The openai backend against the OpenAI-protocol test server: what each request carries, the
kept client's retries (Retry-After, 5xx, never 4xx), errors that name the server, its settings,
and adapter activation with a canary. A real server: test_openai_llamacpp_server.py."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from next_common.errors import InvalidArgumentError, NotFoundError, UnavailableError
from next_sampler.backends.openai import OpenAIBackend, make_openai
from next_sampler.engine import SamplerEngine, backend_registry
from next_sampler.settings import OpenAISettings, SamplerSettings
from nextapi.sampler.types import SamplingParams
from tests.sampler.openai_protocol_server import OpenAIProtocolServer
from tests.sampler.tgi_protocol_server import TgiProtocolServer


def engine(url: str, model: str = "base-model", **overrides: object) -> SamplerEngine:
    settings = SamplerSettings(
        backends=["openai"],
        default_backend="openai",
        openai_url=url,
        openai_model=model,
        **overrides,  # type: ignore[arg-type]
    )
    return SamplerEngine(settings, backend_registry(load_entry_points=False))


def completions(server: OpenAIProtocolServer) -> list[dict[str, object]]:
    return [body for path, body in server.requests if path == "/v1/completions"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("flavor", ["vllm", "sglang"])
async def test_load_verify_and_sample_with_an_adapter(flavor: str) -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server.url, openai_flavor=flavor)
        activation = await eng.activate("", "round-1", "/adapters/round-1")
        assert activation.verified and activation.base_output != activation.adapter_output
        assert server.loaded == {"round-1": "/adapters/round-1"}
        assert server.requests[0][0] == ("/v1/load_lora_adapter" if flavor == "vllm" else "/load_lora_adapter")
        out = await eng.sample(["def f():"], SamplingParams(n=3, temperature=0.8, seed=5), adapter="round-1")
        eng.close()
    sent = completions(server)[-3:]
    assert sorted(b["seed"] for b in sent) == [5, 6, 7] and {b["model"] for b in sent} == {"round-1"}
    assert [c.adapter for c in out] == ["round-1"] * 3 and out[0].completion_tokens == 5


async def test_each_sample_is_one_request_with_its_seed_and_the_params() -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server.url + "/v1/")  # a URL given with /v1 is the same server
        params = SamplingParams(n=2, temperature=0.7, top_p=0.9, max_new_tokens=12, seed=40)
        out = await eng.sample(["a", "b"], params)
        stopped = await eng.sample(["c"], SamplingParams(stop=("\n\n", "def ")))
        eos = await eng.sample(["<eos>"], SamplingParams())
        eng.close()
    sent = completions(server)
    # the four requests go out concurrently: their arrival order is the scheduler's, not the engine's
    assert sorted((b["prompt"], b["seed"]) for b in sent[:4]) == [("a", 40), ("a", 41), ("b", 40), ("b", 41)]
    for body in sent[:4]:
        assert body["n"] == 1 and body["max_tokens"] == 12 and body["temperature"] == 0.7 and body["top_p"] == 0.9
        assert body["model"] == "base-model" and "stop" not in body
    assert sent[4]["stop"] == ["\n\n", "def "]
    assert [(c.prompt_index, c.sample_index, c.seed) for c in out] == [(0, 0, 40), (0, 1, 41), (1, 0, 40), (1, 1, 41)]
    assert out[1].text == "base-model|seed=41|a" and out[1].prompt_tokens == 3 and out[1].completion_tokens == 5
    # vLLM's stop_reason: a stop string is "stop", None (the EOS token) is "eos"
    assert [c.finish_reason for c in out + stopped + eos] == ["length"] * 4 + ["stop", "eos"]


async def test_429_with_retry_after_is_waited_out_then_the_sample_is_drawn() -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server.url)
        server.fail_next = [(429, {"Retry-After": "1"})]
        out = await eng.sample(["x"], SamplingParams())
        eng.close()
    assert out[0].text.startswith("base-model|") and len(server.requests) == 2
    # without Retry-After the first backoff is at most 0.5 s
    assert server.times[1] - server.times[0] >= 0.95


async def test_5xx_is_retried_4xx_never() -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server.url)
        server.fail_next = [500, 503]
        assert (await eng.sample(["x"], SamplingParams()))[0].text.startswith("base-model|")
        assert len(server.requests) == 3
        server.fail_next = [400]
        with pytest.raises(
            InvalidArgumentError, match=r"server %s/v1/completions refused .*\(400\): forced 400" % server.url
        ):
            await eng.sample(["x"], SamplingParams())
        assert len(server.requests) == 4  # not retried
        eng.close()


async def test_retries_run_out_with_an_error_that_names_the_server() -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server.url, openai_max_retries=1)
        server.fail_next = [503, 503]
        with pytest.raises(UnavailableError, match="%s/v1/completions answered 503 after 2 attempts" % server.url):
            await eng.sample(["x"], SamplingParams())
        eng.close()


async def test_an_unreachable_server_is_an_error_naming_its_url_never_a_completion() -> None:
    url = "http://127.0.0.1:%d" % closed_port()
    eng = engine(url, openai_max_retries=0)
    with pytest.raises(UnavailableError, match="server %s/v1/completions cannot be reached after 1 attempts" % url):
        await eng.sample(["x"], SamplingParams(n=2))
    with pytest.raises(UnavailableError, match="%s/v1/load_lora_adapter cannot be reached" % url):
        await eng.activate("", "round-1", "/adapters/round-1")
    eng.close()


async def test_an_adapter_the_server_does_not_serve() -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server.url)
        with pytest.raises(NotFoundError, match="no adapter 'round-9'"):  # never loaded: refused before any request
            await eng.sample(["x"], SamplingParams(), adapter="round-9")
        assert server.requests == []
        backend = eng.backends["openai"]
        assert isinstance(backend, OpenAIBackend)
        backend._adapters["gone"] = "/adapters/gone"  # e.g. the server restarted and forgot it
        with pytest.raises(
            NotFoundError, match=r"%s/v1/completions answered 404: The model `gone` does not exist" % server.url
        ):
            await eng.sample(["x"], SamplingParams(), adapter="gone")
        eng.close()


async def test_the_api_key_is_sent_as_a_bearer_token_and_never_logged(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")  # meant for api.openai.com: never sent
    monkeypatch.setenv("OPENAI_ORG_ID", "org-x")
    key_file = tmp_path / "key"
    key_file.write_text("file-secret\n")
    caplog.set_level(logging.DEBUG)
    with OpenAIProtocolServer() as server:
        for overrides in ({"openai_api_key": "s3cret-token"}, {"openai_api_key_file": str(key_file)}, {}):
            eng = engine(server.url, **overrides)
            await eng.sample(["x"], SamplingParams())
            server.fail_next = [400]
            with pytest.raises(InvalidArgumentError) as refused:
                await eng.sample(["x"], SamplingParams())
            assert "secret" not in str(refused.value)
            eng.close()
    sent = [{k.lower(): v for k, v in h.items()} for h in server.headers]
    assert [h.get("authorization") for h in sent] == ["Bearer s3cret-token"] * 2 + ["Bearer file-secret"] * 2 + [
        None
    ] * 2
    assert not any("openai-organization" in h for h in sent)
    assert "s3cret" not in caplog.text and "file-secret" not in caplog.text


def test_settings_come_from_the_environment_and_the_key_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "URL": "http://vllm:8000",
        "MODEL": "m",
        "FLAVOR": "sglang",
        "API_KEY": "hidden",
        "TIMEOUT_S": "30",
        "MAX_RETRIES": "2",
        "MAX_IN_FLIGHT": "8",
    }.items():
        monkeypatch.setenv("SAMPLER_OPENAI_" + name, value)
    settings = SamplerSettings()
    assert (settings.openai_url, settings.openai_flavor, settings.openai_timeout_s) == (
        "http://vllm:8000",
        "sglang",
        30,
    )
    assert (settings.openai_max_retries, settings.openai_max_in_flight) == (2, 8)
    assert "hidden" not in repr(settings) and "hidden" not in str(settings.model_dump())
    backend = make_openai(settings.model_dump())
    assert backend.client.max_retries == 2 and backend.client.api_key == "hidden"
    backend.close()
    monkeypatch.setenv("SAMPLER_OPENAI_FLAVOR", "triton")
    with pytest.raises(ValidationError, match="openai_flavor"):
        SamplerSettings()


def test_settings_that_cannot_work_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="needs SAMPLER_OPENAI_URL and SAMPLER_OPENAI_MODEL"):
        OpenAIBackend(OpenAISettings(openai_url="", openai_model=""))
    with pytest.raises(InvalidArgumentError, match="must start with http"):
        OpenAIBackend(OpenAISettings(openai_url="vllm:8000", openai_model="m"))
    with pytest.raises(InvalidArgumentError, match=r"SAMPLER_OPENAI_API_KEY_FILE .* cannot be read"):
        OpenAIBackend(OpenAISettings(openai_url="http://x", openai_model="m", openai_api_key_file=str(tmp_path / "no")))


async def test_the_kept_client_is_closed_from_the_serving_loop_or_a_worker_thread() -> None:
    with OpenAIProtocolServer() as server:
        for close_in_thread in (True, False):
            eng = engine(server.url)
            await eng.sample(["x"], SamplingParams())
            backend = eng.backends["openai"]
            assert isinstance(backend, OpenAIBackend)
            if close_in_thread:
                await asyncio.to_thread(eng.close)  # what next_sampler.server does at shutdown
            else:
                eng.close()
                await asyncio.sleep(0.05)
            assert backend.client.is_closed()
            with pytest.raises(UnavailableError, match="closed"):
                await eng.sample(["x"], SamplingParams())


async def test_tgi_adapters_cannot_be_loaded_at_run_time_but_are_verified() -> None:
    with TgiProtocolServer() as server:
        settings = SamplerSettings(
            backends=["tgi"], default_backend="tgi", tgi_url=server.url, tgi_adapters=["round-1"]
        )
        eng = SamplerEngine(settings, backend_registry(load_entry_points=False))
        with pytest.raises(InvalidArgumentError, match="cannot load adapters at run time"):
            await eng.activate("tgi", "round-2", "/adapters/round-2")
        activation = await eng.activate("tgi", "round-1")
        assert activation.verified and activation.adapter_output.startswith("round-1|")
