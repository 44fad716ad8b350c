"""The local engine: a tiny Llama built in the test, batching, PEFT adapters; SmolLM2 in a slow test."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from next_common.errors import NotFoundError  # noqa: E402
from next_common.models import smollm2_path  # noqa: E402
from next_sampler.backends.local_transformers import TransformersEngine  # noqa: E402
from next_sampler.engine import SamplerEngine, backend_registry  # noqa: E402
from next_sampler.generation import SampleJob  # noqa: E402
from next_sampler.settings import SamplerSettings  # noqa: E402
from nextapi.sampler.types import SamplingParams  # noqa: E402
from tests.tiny_models import smollm2_tokenizer, tiny_llama  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return smollm2_tokenizer()


def tiny_model(tokenizer: Any) -> Any:
    return tiny_llama(tokenizer)


def save_adapter(model: Any, path: Path) -> None:
    config = peft.LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    peft.get_peft_model(model, config).save_pretrained(path)


async def test_batched_generation_and_adapter_switching(tokenizer: Any, tmp_path: Path) -> None:
    backend = TransformersEngine(model_obj=tiny_model(tokenizer), tokenizer=tokenizer, batch_size=8, device="cpu")
    params = SamplingParams(max_new_tokens=6)
    jobs = [SampleJob(i, 0, "def f%d(x):" % i, 0) for i in range(5)]
    base = await asyncio.gather(*(backend.generate(j, params, "") for j in jobs))
    assert all(g.completion_tokens <= 6 and g.prompt_tokens > 0 for g in base)
    again = await asyncio.gather(*(backend.generate(j, params, "") for j in jobs))
    assert again == base  # greedy is deterministic
    save_adapter(tiny_model(tokenizer), tmp_path / "round-1")
    await backend.load_adapter("round-1", str(tmp_path / "round-1"))
    tuned = await asyncio.gather(*(backend.generate(j, params, "round-1") for j in jobs))
    assert tuned != base
    # the base model is still there, without reloading
    assert await asyncio.gather(*(backend.generate(j, params, "") for j in jobs)) == base
    with pytest.raises(NotFoundError, match=r"adapter_config\.json missing"):
        await backend.load_adapter("round-2", str(tmp_path / "nowhere"))


async def test_activation_is_verified_through_the_engine(tokenizer: Any, tmp_path: Path) -> None:
    registry = backend_registry(load_entry_points=False)
    settings = SamplerSettings(backends=["replay"], default_backend="replay", replay_file=str(tmp_path / "r.jsonl"))
    (tmp_path / "r.jsonl").write_text("")
    engine = SamplerEngine(settings, registry)
    engine.backends["local"] = TransformersEngine(model_obj=tiny_model(tokenizer), tokenizer=tokenizer, device="cpu")
    save_adapter(tiny_model(tokenizer), tmp_path / "round-1")
    activation = await engine.activate("local", "round-1", str(tmp_path / "round-1"))
    assert activation.verified, activation
    out = await engine.sample(
        ["def g():"], SamplingParams(n=3, temperature=1.0, max_new_tokens=4, seed=1), backend="local", adapter="round-1"
    )
    assert [c.sample_index for c in out] == [0, 1, 2] and {c.adapter for c in out} == {"round-1"}


@pytest.mark.slow
async def test_smollm2_from_the_packaged_gguf(tmp_path: Path) -> None:
    path = smollm2_path(tmp_path)
    assert (path / "config.json").exists() and smollm2_path(tmp_path) == path  # converted once
    backend = TransformersEngine(str(path), device="cpu")
    (result,) = await asyncio.gather(
        backend.generate(SampleJob(0, 0, "def add(a, b):", 0), SamplingParams(max_new_tokens=8), "")
    )
    assert result.completion_tokens > 0 and result.text
