"""Every service starts with `serve` and no flags (the port comes from its environment, so tests
never collide), answers health at once, and reaches SERVING; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nextapi.sampler.v1 import sampler_service_pb2 as spb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as spb_grpc

SERVICES = [
    ("next_tracer", "TRACER_", "nextapi.tracer.v1.TracerService"),
    ("next_trainer", "TRAINER_", "nextapi.trainer.v1.TrainerService"),
    ("next_controller", "CONTROLLER_", "nextapi.controller.v1.ControllerService"),
    pytest.param("next_sampler", "SAMPLER_", "nextapi.sampler.v1.SamplerService", marks=pytest.mark.slow),
]


async def wait_serving(port: int, service: str, process: subprocess.Popen[bytes], timeout_s: float) -> set[int]:
    seen: set[int] = set()
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = (await health.Check(health_pb2.HealthCheckRequest(service=service))).status
            seen.add(status)
            if status == health_pb2.HealthCheckResponse.SERVING:
                return seen
            assert process.poll() is None, "the service exited while loading"
            await asyncio.sleep(0.5)
    raise AssertionError("not SERVING after %.0f s (saw %s)" % (timeout_s, seen))


@pytest.mark.parametrize(("module", "prefix", "service"), SERVICES)
async def test_serve_with_no_flags_reaches_serving(module: str, prefix: str, service: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)}
    env[prefix + "PORT"] = "0"
    env[prefix + "HOST"] = "127.0.0.1"
    env["TRAINER_STORAGE_ROOT"] = env["CONTROLLER_RUNS_ROOT"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", module, "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        found = re.search(rb"listening on port (\d+)", line)
        assert found, line
        port = int(found.group(1))
        await wait_serving(port, service, process, 600)
        if module == "next_sampler":  # the default: the local llama.cpp engine on the packaged SmolLM2
            async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as channel:
                params = spb.SamplingParams(n=2, temperature=0.8, max_new_tokens=4, seed=1)
                request = spb.SampleRequest(prompts=["def add(a, b):"], params=params)
                reply = await spb_grpc.SamplerServiceStub(channel).Sample(request)
            assert [c.sample_index for c in reply.completions] == [0, 1]
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 60) == 0
