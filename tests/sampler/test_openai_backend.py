"""The openai backend against the OpenAI-protocol test server; adapter activation with a canary."""

from __future__ import annotations

import pytest

from next_common.errors import InvalidArgumentError, NotFoundError
from next_sampler.engine import SamplerEngine, backend_registry
from next_sampler.settings import SamplerSettings
from nextapi.sampler.types import SamplingParams
from tests.sampler.openai_protocol_server import OpenAIProtocolServer
from tests.sampler.tgi_protocol_server import TgiProtocolServer


def engine(server: OpenAIProtocolServer, **overrides: object) -> SamplerEngine:
    settings = SamplerSettings(
        backends=["openai"],
        default_backend="openai",
        openai_url=server.url,  # type: ignore[arg-type]
        openai_model=server.model,
        tgi_backoff_s=0.01,
        **overrides,
    )
    return SamplerEngine(settings, backend_registry(load_entry_points=False))


@pytest.mark.parametrize("flavor", ["vllm", "sglang"])
async def test_load_verify_and_sample_with_an_adapter(flavor: str) -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server, openai_flavor=flavor)
        activation = await eng.activate("", "round-1", "/adapters/round-1")
        assert activation.verified and activation.base_output != activation.adapter_output
        assert server.loaded == {"round-1": "/adapters/round-1"}
        assert server.requests[0][0] == ("/v1/load_lora_adapter" if flavor == "vllm" else "/load_lora_adapter")
        out = await eng.sample(["def f():"], SamplingParams(n=3, temperature=0.8, seed=5), adapter="round-1")
    sent = [body for path, body in server.requests if path == "/v1/completions"][-3:]
    assert sorted(b["seed"] for b in sent) == [5, 6, 7] and {b["model"] for b in sent} == {"round-1"}
    assert [c.adapter for c in out] == ["round-1"] * 3 and out[0].completion_tokens == 5


async def test_unknown_adapter_and_retries() -> None:
    with OpenAIProtocolServer() as server:
        eng = engine(server)
        with pytest.raises(NotFoundError, match="no adapter 'round-9'"):
            await eng.sample(["x"], SamplingParams(), adapter="round-9")
        server.fail_next = [429, 503]
        assert (await eng.sample(["x"], SamplingParams()))[0].text.startswith("base-model|")


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
