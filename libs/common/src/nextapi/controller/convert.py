"""The controller's domain types to and from its protos: the one mapping the servicer and the client share."""

from __future__ import annotations

import json
from typing import Any

from nextapi.controller.types import RunEvent, RunStatus, StageStatus
from nextapi.controller.v1 import controller_service_pb2 as pb


def stage_to_proto(stage: dict[str, Any]) -> pb.StageStatus:
    """A stage as the run manager reports it (its manifest entry plus state and error)."""
    timing = stage.get("timing") or {}
    return pb.StageStatus(
        name=str(stage["name"]),
        state=str(stage.get("state", "")),
        wall_seconds=float(timing.get("wall_s", 0.0)),
        service_seconds=float(timing.get("service_s", 0.0)),
        summary_json=json.dumps(stage["summary"]) if stage.get("summary") is not None else "",
        error=str(stage.get("error", "")),
    )


def stage_from_proto(s: pb.StageStatus) -> StageStatus:
    summary = json.loads(s.summary_json) if s.summary_json else None
    return StageStatus(s.name, s.state, s.wall_seconds, s.service_seconds, summary, s.error)


def status_from_proto(r: pb.GetRunStatusResponse) -> RunStatus:
    return RunStatus(r.state, [stage_from_proto(s) for s in r.stages], r.active)


def event_to_proto(event: dict[str, Any]) -> pb.RunEvent:
    return pb.RunEvent(
        time=float(event.get("time", 0.0)),
        stage=str(event.get("stage", "")),
        kind=str(event.get("kind", "")),
        event_json=json.dumps(event, sort_keys=True),
    )


def event_from_proto(e: pb.RunEvent) -> RunEvent:
    return RunEvent(e.time, e.stage, e.kind, json.loads(e.event_json) if e.event_json else {})
