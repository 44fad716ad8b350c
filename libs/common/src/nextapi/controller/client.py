"""The controller client: start runs on a controller server, read their status, follow their events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import grpc

from nextapi.controller import convert
from nextapi.controller.types import RunEvent, RunStatus
from nextapi.controller.v1 import controller_service_pb2 as pb
from nextapi.controller.v1 import controller_service_pb2_grpc as pb_grpc


class ControllerClient(Protocol):
    async def start_run(self, config_yaml: str, overrides: Sequence[str] = ()) -> str: ...

    async def status(self, run_dir: str) -> RunStatus: ...

    def events(self, run_dir: str) -> AsyncIterator[RunEvent]: ...

    async def close(self) -> None: ...


class GrpcControllerClient:
    def __init__(self, target: str, timeout_s: float = 60.0) -> None:
        self.channel = grpc.aio.insecure_channel(target)
        self.stub = pb_grpc.ControllerServiceStub(self.channel)
        self.timeout_s = timeout_s

    async def start_run(self, config_yaml: str, overrides: Sequence[str] = ()) -> str:
        """Validate and start a run from its YAML text; its run directory."""
        request = pb.StartRunRequest(config_yaml=config_yaml, overrides=list(overrides))
        return str((await self.stub.StartRun(request, timeout=self.timeout_s)).run_dir)

    async def status(self, run_dir: str) -> RunStatus:
        resp = await self.stub.GetRunStatus(pb.GetRunStatusRequest(run_dir=run_dir), timeout=self.timeout_s)
        return convert.status_from_proto(resp)

    async def events(self, run_dir: str) -> AsyncIterator[RunEvent]:
        """Every event of the run so far, then new ones as they happen, until the run ends."""
        async for resp in self.stub.StreamRunEvents(pb.StreamRunEventsRequest(run_dir=run_dir)):
            yield convert.event_from_proto(resp.event)

    async def close(self) -> None:
        await self.channel.close()
