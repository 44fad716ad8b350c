"""The openai backend against a real OpenAI-compatible server: llama.cpp's HTTP server (through
the xllamacpp wheel, in this process) on the packaged SmolLM2-135M GGUF, listening on a free
loopback port and asking for an API key, as vLLM started with --api-key does."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from typing import Any

import pytest

xllamacpp = pytest.importorskip("xllamacpp")

from next_common.errors import InvalidArgumentError, NotFoundError  # noqa: E402
from next_common.models import SMOLLM2, gguf_file  # noqa: E402
from next_sampler.engine import SamplerEngine, backend_registry  # noqa: E402
from next_sampler.settings import SamplerSettings  # noqa: E402
from nextapi.sampler.types import SamplingParams  # noqa: E402

MODEL = "smollm2"  # the name the server answers to (vLLM: --served-model-name)
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    try:
        gguf = gguf_file(SMOLLM2)
    except NotFoundError as exc:
        pytest.skip("the packaged SmolLM2 GGUF is not installed (%s)" % exc)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    key = secrets.token_hex(8)
    params = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.model_alias = MODEL
    params.port = port  # hostnames default to 127.0.0.1
    params.api_keys = [key]
    # One slot: requests run one after another, each alone in its batch, so a seed gives the same
    # tokens every time (the batch a sample shares can change its late tokens; docs/sampler.md).
    params.n_parallel = 1
    params.n_ctx = 512
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.warmup = False
    params.verbosity = -1
    running = xllamacpp.Server(params)
    try:
        yield {"url": "http://127.0.0.1:%d" % port, "key": key, "address": running.listening_address}
    finally:
        del running  # the server's threads stop when it is collected


def engine(server: dict[str, Any], **overrides: Any) -> SamplerEngine:
    fields: dict[str, Any] = {
        "backends": ["openai"],
        "default_backend": "openai",
        "openai_url": server["url"],
        "openai_model": MODEL,
        "openai_api_key": server["key"],
        "openai_max_retries": 0,
    }
    return SamplerEngine(SamplerSettings(**(fields | overrides)), backend_registry(load_entry_points=False))


async def test_seeded_samples_from_a_real_server(server: dict[str, Any]) -> None:
    assert server["address"].endswith(server["url"].rsplit(":", 1)[1])
    eng = engine(server)
    params = SamplingParams(n=2, temperature=0.8, top_p=0.95, max_new_tokens=8, seed=10)
    first = await eng.sample([PROMPT], params)
    again = await eng.sample([PROMPT], params)
    # sample j has seed + j, so sample 1 above is what a request for seed 11 alone draws
    alone = await eng.sample([PROMPT], SamplingParams(n=1, temperature=0.8, top_p=0.95, max_new_tokens=8, seed=11))
    eng.close()
    assert [(c.sample_index, c.seed) for c in first] == [(0, 10), (1, 11)]
    for c in first:
        assert c.text.strip() and c.finish_reason == "length" and c.completion_tokens == 8 and c.prompt_tokens >= 5
    assert [c.text for c in again] == [c.text for c in first]
    assert alone[0].text == first[1].text


async def test_stop_strings_and_greedy_decoding_on_a_real_server(server: dict[str, Any]) -> None:
    eng = engine(server)
    params = SamplingParams(temperature=0.0, max_new_tokens=24, stop=(" 6",))
    out = await eng.sample(["Count: 1, 2, 3,"], params)
    eng.close()
    assert out[0].finish_reason == "stop" and " 6" not in out[0].text and out[0].completion_tokens < 24


async def test_a_wrong_api_key_is_an_error_naming_the_server(server: dict[str, Any]) -> None:
    eng = engine(server, openai_api_key="not-the-key")
    with pytest.raises(
        InvalidArgumentError, match=r"server %s/v1/completions refused the request \(401\)" % server["url"]
    ):
        await eng.sample([PROMPT], SamplingParams(max_new_tokens=2))
    eng.close()
