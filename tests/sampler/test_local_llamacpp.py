"""The llama.cpp engine against the transformers engine on one tiny model converted to GGUF:
the same greedy tokens with and without an adapter; per-sample seeds, reproducibility, stops."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
pytest.importorskip("xllamacpp")

from next_common.errors import NotFoundError, UnavailableError  # noqa: E402
from next_sampler.backends.llamacpp_convert import adapter_gguf, model_gguf  # noqa: E402
from next_sampler.backends.local import make_local  # noqa: E402
from next_sampler.backends.local_llamacpp import LlamaCppEngine  # noqa: E402
from next_sampler.backends.local_transformers import TransformersEngine  # noqa: E402
from next_sampler.generation import SampleJob, expand  # noqa: E402
from nextapi.sampler.types import SamplingParams  # noqa: E402
from tests.tiny_models import smollm2_tokenizer, tiny_llama  # noqa: E402

# Peaked logits: with the default 0.02 init a random model's next-token scores are so close that
# float rounding, not the engine, would decide the argmax.
INIT = 0.5
PROMPTS = ["def add(a, b):", "Hello world"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("tiny-gguf")
    tokenizer = smollm2_tokenizer()
    model = tiny_llama(tokenizer, initializer_range=INIT)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    torch.manual_seed(1)
    config = peft.LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    peft.get_peft_model(tiny_llama(tokenizer, initializer_range=INIT), config).save_pretrained(root / "adapter")
    gguf = model_gguf(root / "model", "f32", cache_dir=root / "cache")
    return {"root": root, "tokenizer": tokenizer, "model": model, "gguf": gguf}


@pytest.fixture(scope="module")
def llamacpp(tiny: dict[str, Any]) -> LlamaCppEngine:
    gguf = str(tiny["gguf"])
    return LlamaCppEngine(gguf, slots=4, context=512, threads=1, precision="as-is", base_hf_dir=tiny["root"] / "model")


async def _greedy(engine: Any, adapter: str = "") -> list[str]:
    params = SamplingParams(max_new_tokens=16)
    results = await asyncio.gather(
        *(engine.generate(SampleJob(i, 0, p, 0), params, adapter) for i, p in enumerate(PROMPTS))
    )
    return [r.text for r in results]


async def test_same_greedy_tokens_as_transformers_with_and_without_an_adapter(
    tiny: dict[str, Any], llamacpp: LlamaCppEngine
) -> None:
    reference = TransformersEngine(model_obj=tiny["model"], tokenizer=tiny["tokenizer"], device="cpu")
    base = await _greedy(llamacpp)
    assert base == await _greedy(reference)
    adapter = str(tiny["root"] / "adapter")
    await llamacpp.load_adapter("round-1", adapter)
    await reference.load_adapter("round-1", adapter)
    tuned = await _greedy(llamacpp, "round-1")
    assert tuned == await _greedy(reference, "round-1") and tuned != base
    assert await _greedy(llamacpp) == base  # the base model is served beside the adapter
    assert llamacpp.adapters() == ["round-1"]


async def test_samples_have_their_own_seeds_and_reproduce(llamacpp: LlamaCppEngine) -> None:
    # T=0.5: a random model's next-token distribution is nearly flat, and at T=1 float rounding
    # that differs between batch shapes would pick the token (llama.cpp, like vLLM, does not
    # promise bit-identical logits across batch compositions; real models' peaked ones hold).
    params = SamplingParams(n=4, temperature=0.5, max_new_tokens=8, seed=7)
    jobs = expand(PROMPTS[:1], params)
    first = await asyncio.gather(*(llamacpp.generate(j, params, "") for j in jobs))
    again = await asyncio.gather(*(llamacpp.generate(j, params, "") for j in jobs))
    assert [g.text for g in first] == [g.text for g in again]
    assert len({g.text for g in first}) > 1  # one prompt's samples differ
    # sample j of a prompt is the request with seed + j, however the samples were grouped
    (alone,) = await asyncio.gather(llamacpp.generate(jobs[2], params, ""))
    assert alone.text == first[2].text
    assert all(g.completion_tokens == 8 and g.finish_reason == "length" and g.prompt_tokens > 0 for g in first)
    # more samples than slots: they queue and all arrive, in order
    many = expand(PROMPTS, SamplingParams(n=6, temperature=1.0, max_new_tokens=4, seed=1))
    done = await asyncio.gather(*(llamacpp.generate(j, params, "") for j in many))
    assert len(done) == 12 and all(g.completion_tokens > 0 for g in done)


async def test_stop_strings_end_a_sample(llamacpp: LlamaCppEngine) -> None:
    (full,) = await asyncio.gather(
        llamacpp.generate(SampleJob(0, 0, PROMPTS[0], 0), SamplingParams(max_new_tokens=16), "")
    )
    stop = full.text.split()[3]
    params = SamplingParams(max_new_tokens=16, stop=(stop,))
    (cut,) = await asyncio.gather(llamacpp.generate(SampleJob(0, 0, PROMPTS[0], 0), params, ""))
    assert cut.finish_reason == "stop" and stop not in cut.text and full.text.startswith(cut.text)


async def test_unknown_adapters_are_clear_errors(llamacpp: LlamaCppEngine, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no adapter 'nope'"):
        await llamacpp.generate(SampleJob(0, 0, "x", 0), SamplingParams(max_new_tokens=1), "nope")
    with pytest.raises(NotFoundError, match=r"adapter_config\.json missing"):
        await llamacpp.load_adapter("round-2", str(tmp_path))


def test_adapters_are_converted_once_per_content(tiny: dict[str, Any], tmp_path: Path) -> None:
    first = adapter_gguf(tiny["root"] / "adapter", tiny["root"] / "model", cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    assert adapter_gguf(tiny["root"] / "adapter", tiny["root"] / "model", cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime and [p.name for p in tmp_path.iterdir()] == [first.name]


def test_the_engine_is_chosen_by_a_setting(tiny: dict[str, Any]) -> None:
    options = {"local_model": str(tiny["gguf"]), "local_slots": 2, "local_context": 256, "local_precision": "as-is"}
    assert isinstance(make_local(options), LlamaCppEngine)
    folder = str(tiny["root"] / "model")
    assert isinstance(make_local({"local_model": folder, "local_engine": "transformers"}), TransformersEngine)


def test_an_engine_dropped_as_soon_as_it_starts_can_be_collected(tiny: dict[str, Any]) -> None:
    # xllamacpp's Server returns before its loop runs; dropped then, its destructor waited forever
    # (this test hung the suite). In a child process, so a regression fails instead of hanging.
    code = (
        "from next_sampler.backends.local_llamacpp import LlamaCppEngine\n"
        "for _ in range(3):\n"
        "    LlamaCppEngine(%r, slots=1, context=256, threads=1, precision='as-is')\n"
        "print('collected')\n" % str(tiny["gguf"])
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert done.stdout.strip() == "collected", done.stderr[-2000:]


def test_an_abandoned_request_stops_at_the_next_token(llamacpp: LlamaCppEngine) -> None:
    # A cancelled RPC or a stopping sampler must not leave llama.cpp generating to max_new_tokens
    # (a killed controller once left an orphaned sampler burning both cores for minutes).
    calls = 0

    def abandoned() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    request = llamacpp._request(_group("def add(a, b):", SamplingParams(max_new_tokens=400, temperature=0.0)))
    request["ignore_eos"] = True
    with pytest.raises(UnavailableError, match="abandoned"):
        LlamaCppEngine._complete(llamacpp._server, request, 1, abandoned)
    assert calls <= 5  # stopped after the fourth chunk, not after 400


def _group(prompt: str, params: SamplingParams) -> Any:
    from next_sampler.backends.local_llamacpp import _Group

    future: asyncio.Future[Any] = asyncio.new_event_loop().create_future()
    group = _Group(prompt, params, "")
    group.jobs.append((SampleJob(0, 0, prompt, 0), future))
    return group
