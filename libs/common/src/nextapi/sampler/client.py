"""The sampler client: what callers code against (``SamplerClient``) and its gRPC implementation.

Depends on the generated API and the sampler's domain types only (no model, no torch).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import grpc

from nextapi.sampler import convert
from nextapi.sampler.types import Activation, Completion, SamplingParams
from nextapi.sampler.v1 import sampler_service_pb2 as pb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class BackendInfo:
    name: str
    description: str
    adapters: list[str]


class SamplerClient(Protocol):
    async def sample(
        self, prompts: list[str], params: SamplingParams, adapter: str = "", backend: str = ""
    ) -> list[Completion]: ...

    def stream(
        self, prompts: list[str], params: SamplingParams, adapter: str = "", backend: str = ""
    ) -> AsyncIterator[Completion]: ...

    async def activate(self, adapter: str, path: str = "", canary: str = "", backend: str = "") -> Activation: ...

    async def backends(self) -> tuple[list[BackendInfo], str]: ...

    async def close(self) -> None: ...


class GrpcSamplerClient:
    def __init__(self, target: str, timeout_s: float = 3600.0, channel: grpc.aio.Channel | None = None) -> None:
        """``channel``: an existing one (the controller's, with its retry policy) instead of a new one."""
        self.channel = channel or grpc.aio.insecure_channel(target)
        self._owns_channel = channel is None
        self.stub = pb_grpc.SamplerServiceStub(self.channel)
        self.timeout_s = timeout_s

    @staticmethod
    def _request(prompts: list[str], params: SamplingParams, adapter: str, backend: str) -> pb.SampleRequest:
        return pb.SampleRequest(
            prompts=prompts, params=convert.params_to_proto(params), backend=backend, adapter=adapter
        )

    async def sample(
        self, prompts: list[str], params: SamplingParams, adapter: str = "", backend: str = ""
    ) -> list[Completion]:
        resp = await self.stub.Sample(self._request(prompts, params, adapter, backend), timeout=self.timeout_s)
        return [convert.completion_from_proto(c) for c in resp.completions]

    async def stream(
        self, prompts: list[str], params: SamplingParams, adapter: str = "", backend: str = ""
    ) -> AsyncIterator[Completion]:
        """Completions as they finish (any order)."""
        request = pb.SampleStreamRequest(request=self._request(prompts, params, adapter, backend))
        async for reply in self.stub.SampleStream(request):
            yield convert.completion_from_proto(reply.completion)

    async def activate(self, adapter: str, path: str = "", canary: str = "", backend: str = "") -> Activation:
        """Load ``adapter`` from ``path`` (if given) and verify it changes a greedy canary. Loading can
        take as long as a sampling call (TGI: a rollout of its Deployment), so it gets the same deadline."""
        request = pb.ActivateAdapterRequest(backend=backend, adapter=adapter, path=path, canary_prompt=canary)
        return convert.activation_from_proto(await self.stub.ActivateAdapter(request, timeout=self.timeout_s))

    async def backends(self) -> tuple[list[BackendInfo], str]:
        resp = await self.stub.ListBackends(pb.ListBackendsRequest(), timeout=60)
        return [BackendInfo(b.name, b.description, list(b.adapters)) for b in resp.backends], resp.default_backend

    async def close(self) -> None:
        if self._owns_channel:
            await self.channel.close()
