"""Sampler service overhead: completions/s over gRPC against a backend that answers instantly
(the replay backend), so the figure is the service's own cost. Target: >= 1,000 completions/s.

Usage: .venv/bin/python benchmarks/sampler_overhead.py [--prompts 256] [--n 32] [--clients 4]
The last line is ``ratio <completions/s / 1000>``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc


async def run(prompts: int, n: int, clients: int) -> float:
    from next_sampler.backends.replay import record_line
    from next_sampler.engine import SamplerEngine, backend_registry
    from next_sampler.server import start_server
    from next_sampler.settings import SamplerSettings
    from nextapi.sampler.types import Completion
    from nextapi.sampler.v1 import sampler_service_pb2 as pb
    from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc

    texts = ["Fix the buggy program number %d.\n" % i + "x" * 400 for i in range(prompts)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.jsonl"
        path.write_text(
            "\n".join(
                record_line(t, Completion(i, j, "rationale and fix " * 30, 100, 120, "stop", "", j))
                for i, t in enumerate(texts)
                for j in range(n)
            )
            + "\n"
        )
        settings = SamplerSettings(
            backends=["replay"],
            default_backend="replay",
            replay_file=str(path),
            port=0,
            host="127.0.0.1",
            max_concurrency=4096,
        )
        engine = SamplerEngine(settings, backend_registry(load_entry_points=False))
        service, _ = await start_server(settings, engine)
        try:
            async with grpc.aio.insecure_channel(
                "127.0.0.1:%d" % service.port, options=[("grpc.max_receive_message_length", 256 << 20)]
            ) as channel:
                stub = pb_grpc.SamplerServiceStub(channel)
                per_client = [texts[k::clients] for k in range(clients)]
                started = time.perf_counter()
                results = await asyncio.gather(
                    *(
                        stub.Sample(pb.SampleRequest(prompts=chunk, params=pb.SamplingParams(n=n, temperature=0.8)))
                        for chunk in per_client
                    )
                )
                elapsed = time.perf_counter() - started
        finally:
            await service.stop(0)
    total = sum(len(r.completions) for r in results)
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    rates = [asyncio.run(run(args.prompts, args.n, args.clients)) for _ in range(3)]
    rate = sorted(rates)[1]
    print(
        "%d prompts x %d samples, %d concurrent clients: %.0f completions/s (median of 3)"
        % (args.prompts, args.n, args.clients, rate)
    )
    print("ratio %.2f" % (rate / 1000))


if __name__ == "__main__":
    main()
