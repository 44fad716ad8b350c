"""The local backend's two engines at a round's real shape: 16 prompts x 8 samples, up to 256
new tokens, stopping at EOS, T=0.8 / top_p 0.95, the same model, in the same run.

Prompts are rendered by the project's own prompt code (``next_tasks.prompts``) in the model's
chat template: with ``--shots 3`` (the default: the paper's round-0 sampling of the base model)
the three exemplars with their traces, then an MBPP problem with a mutated program and its tests;
the task's own trace is stood in for by the program (same shape, no tracer needed). The
transformers engine runs at batch 32 (its best measured setting on 2 cores), the llama.cpp
engine with its defaults.

Usage: .venv/bin/python benchmarks/local_engine.py [--model smollm2-135m-instruct] [--shots 3|0]
       [--precision q8_0|as-is|f16|bf16|f32] [--prompts 16 --samples 8 --new-tokens 256] [--skip-reference]
The last line is ``ratio X``: llama.cpp completions/s over transformers completions/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp" / "sanitized-mbpp.json"


def repair_prompts(model: str, count: int, shots: int = 3) -> list[str]:
    from transformers import AutoTokenizer

    from next_common.models import resolve_model
    from next_tasks.prompts import exemplars, render_answer, render_request, to_model_input

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    prompts = []
    for p in json.loads(DATA.read_text())[:count]:
        messages = []
        for ex in exemplars()[:shots]:
            messages.append({"role": "user", "content": render_request(ex.problem, ex.buggy, ex.tests, ex.trace)})
            messages.append({"role": "assistant", "content": render_answer(ex.rationale, ex.fixed)})
        buggy = p["code"].replace("==", "!=")
        request = render_request(p["prompt"], buggy, p["test_list"], buggy)  # the program stands in for its trace
        messages.append({"role": "user", "content": request})
        prompts.append(to_model_input(messages, tokenizer))
    return prompts


async def run(engine: Any, prompts: list[str], samples: int, new_tokens: int) -> tuple[float, int, int]:
    from next_sampler.generation import expand
    from nextapi.sampler.types import SamplingParams

    params = SamplingParams(n=samples, temperature=0.8, top_p=0.95, max_new_tokens=new_tokens, seed=1)
    jobs = expand(prompts, params)
    started = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(j, params, "") for j in jobs))
    elapsed = time.perf_counter() - started
    return elapsed, len(results), sum(r.completion_tokens for r in results)


def measure(name: str, engine: Any, prompts: list[str], samples: int, new_tokens: int) -> float:
    asyncio.run(run(engine, prompts[:1], 1, 4))  # warm-up
    elapsed, done, tokens = asyncio.run(run(engine, prompts, samples, new_tokens))
    rate = done / elapsed
    print(
        "%-12s %4d completions %6d tokens %7.1f s  %.3f completions/s  %.1f tokens/s"
        % (name, done, tokens, elapsed, rate, tokens / elapsed),
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="q8_0")
    parser.add_argument("--shots", type=int, choices=(0, 3), default=3)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--skip-reference", action="store_true", help="llama.cpp only (no ratio)")
    args = parser.parse_args()
    from next_sampler.backends.local_llamacpp import LlamaCppEngine

    prompts = repair_prompts(args.model, args.prompts, args.shots)
    fast = measure(
        "llamacpp", LlamaCppEngine(args.model, precision=args.precision), prompts, args.samples, args.new_tokens
    )
    if args.skip_reference:
        return
    from next_sampler.backends.local_transformers import TransformersEngine

    reference = measure(
        "transformers",
        TransformersEngine(args.model, batch_size=32, device="cpu"),
        prompts,
        args.samples,
        args.new_tokens,
    )
    print("ratio %.2f" % (fast / reference))


if __name__ == "__main__":
    main()
