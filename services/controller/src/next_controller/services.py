"""The three services a run talks to: started here on loopback (embedded) or reached at targets.

Every call goes over gRPC, also in embedded mode, so a laptop run exercises the same paths
as a cluster. Tracer calls spread over replicas with gRPC's own round-robin policy (several
``ipv4:`` addresses, or a headless service's ``dns:///`` name) and UNAVAILABLE is retried
with exponential backoff by gRPC's retry policy; the controller bounds calls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from next_common.errors import InvalidArgumentError, UnavailableError
from next_common.process import child_env
from next_controller.config import RunConfig
from nextapi.sampler.client import GrpcSamplerClient
from nextapi.sampler.types import Activation, Completion, SamplingParams
from nextapi.tracer.client import GrpcTracerClient
from nextapi.trainer.client import GrpcTrainerClient, start_or_attach
from nextapi.trainer.config import TrainingConfig
from nextapi.trainer.types import JobStatus

log = logging.getLogger(__name__)

LISTENING = re.compile(rb"listening on port (\d+)")
STARTUP_TIMEOUT_S = 600.0  # the sampler may convert SmolLM2 on first use


def channel_options(retries: int, round_robin: bool) -> list[tuple[str, Any]]:
    policy: dict[str, Any] = {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": min(retries + 1, 5),  # gRPC caps attempts at 5
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    if round_robin:
        policy["loadBalancingConfig"] = [{"round_robin": {}}]
    return [
        ("grpc.service_config", json.dumps(policy)),
        ("grpc.enable_retries", 1 if retries else 0),
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20),
    ]


def tracer_target(targets: Sequence[str]) -> str:
    """One gRPC target for several tracer replicas (IP addresses), or the single target given."""
    if len(targets) == 1:
        return targets[0]
    for target in targets:
        host = target.rsplit(":", 1)[0].strip("[]")
        if not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", host):
            raise InvalidArgumentError(
                "services.tracer: several targets must be IP:PORT (%r is not); for names use one dns:///NAME:PORT"
                % target
            )
    return "ipv4:" + ",".join(targets) if all("." in t for t in targets) else "ipv6:" + ",".join(targets)


class BusyClock:
    """Seconds during which at least one service call was in flight: the rest of a stage's wall
    time is the controller's own overhead."""

    def __init__(self) -> None:
        self.busy_s = 0.0
        self._in_flight = 0
        self._since = 0.0

    @contextlib.contextmanager
    def call(self) -> Any:
        if self._in_flight == 0:
            self._since = time.perf_counter()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.busy_s += time.perf_counter() - self._since


@dataclass
class ServiceProcess:
    name: str
    process: asyncio.subprocess.Process
    port: int
    log_path: str = ""

    async def wait_ready(self, service: str) -> None:
        """Wait until health says SERVING (a model may be loading); fail at once if the process exits."""
        healthy = asyncio.ensure_future(
            wait_healthy("127.0.0.1:%d" % self.port, service, "embedded " + self.name, STARTUP_TIMEOUT_S)
        )
        exited = asyncio.ensure_future(self.process.wait())
        done, _ = await asyncio.wait({healthy, exited}, return_when=asyncio.FIRST_COMPLETED)
        if healthy in done:
            exited.cancel()
            healthy.result()
            return
        healthy.cancel()
        raise UnavailableError(
            "the embedded %s exited (status %s) while loading; see %s"
            % (self.name, self.process.returncode, self.log_path)
        )

    @classmethod
    async def start(cls, name: str, argv: list[str], env: dict[str, str], log_path: str) -> ServiceProcess:
        with open(log_path, "ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                env=child_env(env),  # a killed controller takes its services along
            )
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = await asyncio.wait_for(process.stdout.readline(), deadline - time.monotonic())
            except TimeoutError:
                break
            if not line:
                break
            found = LISTENING.search(line)
            if found:
                return cls(name, process, int(found.group(1)), log_path)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise UnavailableError("the embedded %s did not start; see %s" % (name, log_path))

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def wait_healthy(target: str, service: str, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = "status %s" % health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                last = "%s: %s" % (exc.code().name, exc.details())
            await asyncio.sleep(0.5)
    raise UnavailableError("the %s at %s is unreachable (%s)" % (what, target, last))


class Services:
    """Clients of the tracer, sampler and trainer; ``async with Services.open(config)``."""

    def __init__(self, config: RunConfig, tracer: str, sampler: str, trainer: str) -> None:
        self.config = config
        self.clock = BusyClock()
        opts = config.services
        round_robin = tracer.startswith(("ipv4:", "ipv6:", "dns:"))
        self.tracer = GrpcTracerClient(
            tracer, timeout_s=600.0, channel_options=channel_options(opts.rpc_retries, round_robin)
        )
        self.tracer_slots = asyncio.Semaphore(opts.tracer_concurrency)
        self._sampler_channel = grpc.aio.insecure_channel(sampler, options=channel_options(opts.rpc_retries, False))
        self.sampler = GrpcSamplerClient(sampler, channel=self._sampler_channel)
        self._trainer_channel = grpc.aio.insecure_channel(trainer, options=channel_options(opts.rpc_retries, False))
        self.trainer = GrpcTrainerClient(trainer, channel=self._trainer_channel)
        self.targets = {"tracer": tracer, "sampler": sampler, "trainer": trainer}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: RunConfig, log_dir: str) -> AsyncIterator[Services]:
        processes: list[ServiceProcess] = []
        try:
            names = [
                "nextapi.tracer.v1.TracerService",
                "nextapi.sampler.v1.SamplerService",
                "nextapi.trainer.v1.TrainerService",
            ]
            if config.services.mode == "embedded":
                processes = await _start_embedded(config, log_dir)
                tracer, sampler, trainer = ["127.0.0.1:%d" % p.port for p in processes]
                # they may still be loading a model (NOT_SERVING); one that exits fails at once
                await asyncio.gather(*(p.wait_ready(name) for p, name in zip(processes, names, strict=True)))
            else:
                tracer = tracer_target(config.services.tracer)
                sampler, trainer = config.services.sampler, config.services.trainer
                wait = config.services.connect_timeout_s
                await asyncio.gather(
                    *(
                        wait_healthy(target, name, what, wait)
                        for target, name, what in zip(
                            (tracer, sampler, trainer), names, ("tracer", "sampler", "trainer"), strict=True
                        )
                    )
                )
            services = cls(config, tracer, sampler, trainer)
            try:
                yield services
            finally:
                await services.close()
        finally:
            await asyncio.gather(*(p.stop() for p in processes))

    async def close(self) -> None:
        await self.tracer.close()
        await self._sampler_channel.close()
        await self._trainer_channel.close()

    # -- sampler ---------------------------------------------------------------------------
    async def sample_stream(
        self, prompts: list[str], params: SamplingParams, adapter: str, backend: str = ""
    ) -> AsyncIterator[Completion]:
        with self.clock.call():
            async for completion in self.sampler.stream(
                prompts, params, adapter, backend or self.config.services.sampler_backend
            ):
                yield completion

    async def activate(self, adapter: str, path: str, canary: str = "") -> Activation:
        loading = self.config.services.adapter_loading
        with self.clock.call():
            return await self.sampler.activate(
                adapter, path if loading == "path" else "", canary, self.config.services.sampler_backend
            )

    # -- trainer ---------------------------------------------------------------------------
    async def train(self, config: TrainingConfig) -> AsyncIterator[JobStatus]:
        with self.clock.call():
            job_id = await start_or_attach(self.trainer, config)
            async for job in self.trainer.watch(job_id):
                yield job


async def _start_embedded(config: RunConfig, log_dir: str) -> list[ServiceProcess]:
    env = dict(os.environ)
    env.setdefault("SAMPLER_LOCAL_MODEL", config.base_model)
    env.setdefault("SAMPLER_LOCAL_ENGINE", config.services.local_engine)
    sampler_argv = [sys.executable, "-m", "next_sampler", "serve", "--port", "0"]
    sampler_argv += ["--backend", config.services.sampler_backend]
    if config.services.replay_file:
        sampler_argv += ["--replay-file", config.services.replay_file]
    env["TRACER_HOST"] = env["SAMPLER_HOST"] = env["TRAINER_HOST"] = "127.0.0.1"
    specs = [
        ("tracer", [sys.executable, "-m", "next_tracer", "serve", "--port", "0"]),
        ("sampler", sampler_argv),
        ("trainer", [sys.executable, "-m", "next_trainer", "serve", "--port", "0"]),
    ]
    os.makedirs(log_dir, exist_ok=True)
    started = await asyncio.gather(
        *(ServiceProcess.start(name, argv, env, os.path.join(log_dir, name + ".log")) for name, argv in specs),
        return_exceptions=True,
    )
    errors = [s for s in started if isinstance(s, BaseException)]
    if errors:
        await asyncio.gather(*(s.stop() for s in started if isinstance(s, ServiceProcess)))
        raise errors[0]
    return [s for s in started if isinstance(s, ServiceProcess)]
