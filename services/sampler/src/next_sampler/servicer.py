"""SamplerService over gRPC: translates between protos and the engine, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from next_common.errors import UnavailableError
from next_sampler.engine import SamplerEngine
from nextapi.sampler.convert import activation_to_proto, completion_to_proto, params_from_proto
from nextapi.sampler.v1 import sampler_service_pb2 as pb
from nextapi.sampler.v1 import sampler_service_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["SamplerService"].full_name


class SamplerServicer(pb_grpc.SamplerServiceServicer):
    def __init__(self, engine: SamplerEngine | None) -> None:
        self._engine = engine  # None while the backends load (health says NOT_SERVING)

    @property
    def engine(self) -> SamplerEngine:
        if self._engine is None:
            raise UnavailableError("the sampler is still loading its backends; retry when health says SERVING")
        return self._engine

    @engine.setter
    def engine(self, engine: SamplerEngine) -> None:
        self._engine = engine

    async def Sample(self, request: pb.SampleRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.SampleResponse:
        completions = await self.engine.sample(
            list(request.prompts), params_from_proto(request.params), request.backend, request.adapter
        )
        return pb.SampleResponse(completions=[completion_to_proto(c) for c in completions])

    async def SampleStream(
        self, request: pb.SampleStreamRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.SampleStreamResponse]:
        inner = request.request
        stream = self.engine.stream(list(inner.prompts), params_from_proto(inner.params), inner.backend, inner.adapter)
        async for completion, done, total in stream:
            yield pb.SampleStreamResponse(completion=completion_to_proto(completion), done=done, total=total)

    async def ActivateAdapter(
        self, request: pb.ActivateAdapterRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ActivateAdapterResponse:
        result = await self.engine.activate(request.backend, request.adapter, request.path, request.canary_prompt)
        return activation_to_proto(result)

    async def ListBackends(
        self, request: pb.ListBackendsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListBackendsResponse:
        return pb.ListBackendsResponse(
            backends=[pb.BackendInfo(name=n, description=d, adapters=a) for n, d, a in self.engine.describe()],
            default_backend=self.engine.settings.default_backend,
        )
