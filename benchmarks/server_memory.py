"""Server memory over many requests: a tracer server in a child process takes N RunTests and
Trace requests over gRPC; its RSS is sampled along the way.

Usage: .venv/bin/python benchmarks/server_memory.py [--requests 10000]
The last line is ``ratio <final RSS / RSS after the warm-up>`` (flat is ~1.0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys

import grpc


def rss_mb(pid: int) -> float:
    with open("/proc/%d/status" % pid) as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def drive(port: int, pid: int, total: int) -> None:
    from nextapi.tracer.v1 import tracer_service_pb2 as pb
    from nextapi.tracer.v1 import tracer_service_pb2_grpc as pb_grpc

    program = "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x * 2)\n    return out\n"
    run = pb.RunTestsRequest(program=program, tests=[pb.StatementTest(source="assert f([1, 2]) == [2, 4]")])
    trace = pb.TraceRequest(program=program, test=pb.StatementTest(source="assert f([1, 2]) == [2, 5]"))
    warm = total // 10
    baseline = 0.0
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as channel:
        stub = pb_grpc.TracerServiceStub(channel)
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                if i % 2:
                    await stub.RunTests(run)
                else:
                    await stub.Trace(trace)

        done = 0
        while done < total:
            batch = min(warm, total - done)
            await asyncio.gather(*(one(done + i) for i in range(batch)))
            done += batch
            rss = rss_mb(pid)
            if done == warm:
                baseline = rss
            print("requests %6d  server RSS %.1f MB" % (done, rss), flush=True)
    print("ratio %.3f" % (rss_mb(pid) / baseline))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    env = {**os.environ, "TRACER_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "next_tracer", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(" ", 1)[1])
        asyncio.run(drive(port, proc.pid, args.requests))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
