"""ControllerService over gRPC: translates between protos and the run manager, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from next_controller.run_manager import RunManager
from nextapi.controller import convert
from nextapi.controller.v1 import controller_service_pb2 as pb
from nextapi.controller.v1 import controller_service_pb2_grpc as pb_grpc

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["ControllerService"].full_name

Context = grpc.aio.ServicerContext[Any, Any]


class ControllerServicer(pb_grpc.ControllerServiceServicer):
    def __init__(self, manager: RunManager) -> None:
        self.manager = manager

    async def StartRun(self, request: pb.StartRunRequest, context: Context) -> pb.StartRunResponse:
        config = self.manager.parse(request.config_yaml, list(request.overrides))
        return pb.StartRunResponse(run_dir=str(await self.manager.start(config)))

    async def GetRunStatus(self, request: pb.GetRunStatusRequest, context: Context) -> pb.GetRunStatusResponse:
        status = self.manager.status(request.run_dir)
        return pb.GetRunStatusResponse(
            state=status["state"], stages=[convert.stage_to_proto(s) for s in status["stages"]], active=status["active"]
        )

    async def StreamRunEvents(
        self, request: pb.StreamRunEventsRequest, context: Context
    ) -> AsyncIterator[pb.StreamRunEventsResponse]:
        async for event in self.manager.events(request.run_dir):
            yield pb.StreamRunEventsResponse(event=convert.event_to_proto(event))
