"""ControllerService over a real loopback channel: start a run, stream its events, read its status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from next_controller.server import start_server
from next_controller.settings import ControllerSettings
from nextapi.controller.v1 import controller_service_pb2 as pb
from nextapi.controller.v1 import controller_service_pb2_grpc as pb_grpc
from tests.controller.conftest import make_run

pytest.importorskip("torch")


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[pb_grpc.ControllerServiceStub]:
    service, manager = await start_server(ControllerSettings(host="127.0.0.1", port=0, poll_interval_s=0.05))
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            yield pb_grpc.ControllerServiceStub(channel)
    finally:
        await manager.close()
        await service.stop(0)


async def test_a_run_started_over_grpc_streams_its_events_to_the_end(
    stub: pb_grpc.ControllerServiceStub, tmp_path: Path, tiny_model: Path
) -> None:
    config = (await asyncio.to_thread(make_run, tmp_path, tiny_model, 1)).read_text()
    overrides = ["hard_problems.enabled=false", "evaluation.proxy.enabled=false"]
    started = await stub.StartRun(pb.StartRunRequest(config_yaml=config, overrides=overrides))
    assert started.run_dir == str(tmp_path / "run")
    with pytest.raises(grpc.aio.AioRpcError) as info:  # one execution per run directory
        await stub.StartRun(pb.StartRunRequest(config_yaml=config, overrides=overrides))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    events = [r.event async for r in stub.StreamRunEvents(pb.StreamRunEventsRequest(run_dir=started.run_dir))]
    kinds = [(e.stage, e.kind) for e in events]
    assert kinds[0] == ("run", "started") and kinds[-1] == ("run", "finished"), kinds[-3:]
    assert ("round-1/train", "completed") in kinds and ("hard", "completed") in kinds
    completed = [json.loads(e.event_json) for e in events if e.stage == "round-1/eval" and e.kind == "completed"]
    assert completed[0]["summary"]["dev"]["pass@1/trace"] == 0.5

    status = await stub.GetRunStatus(pb.GetRunStatusRequest(run_dir=started.run_dir))
    assert status.state == "finished" and not status.active
    by_name = {s.name: s for s in status.stages}
    assert by_name["round-1/train"].state == "completed" and by_name["round-1/train"].wall_seconds > 0
    assert json.loads(by_name["round-1/filter"].summary_json)["kept"] == 4


async def test_bad_configs_and_unknown_runs_are_refused(stub: pb_grpc.ControllerServiceStub, tmp_path: Path) -> None:
    async def code(call: object) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call  # type: ignore[misc]
        return info.value.code(), info.value.details() or ""

    c, details = await code(stub.StartRun(pb.StartRunRequest(config_yaml="run_dir: r\nrounds: 2\n")))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "data: Field required" in details
    yaml_text = "run_dir: r\ndata: {train: t, dev: d}\nsampling: {temprature: 1}\n"
    c, details = await code(stub.StartRun(pb.StartRunRequest(config_yaml=yaml_text)))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "sampling.temprature" in details
    # a valid file whose data is missing is refused at once, as `next run --check` would report it
    yaml_text = "run_dir: r\ndata: {train: %s, dev: %s}\n" % (tmp_path / "no-train.jsonl", tmp_path / "no-dev.jsonl")
    c, details = await code(stub.StartRun(pb.StartRunRequest(config_yaml=yaml_text)))
    assert c == grpc.StatusCode.INVALID_ARGUMENT and "the run cannot start" in details and "no-train.jsonl" in details
    c, details = await code(stub.GetRunStatus(pb.GetRunStatusRequest(run_dir=str(tmp_path / "none"))))
    assert c == grpc.StatusCode.NOT_FOUND and "not a run directory" in details


async def test_the_client_reads_status_and_events_as_domain_types(tmp_path: Path, tiny_model: Path) -> None:
    from nextapi.controller.client import GrpcControllerClient

    service, manager = await start_server(ControllerSettings(host="127.0.0.1", port=0, poll_interval_s=0.05))
    client = GrpcControllerClient("127.0.0.1:%d" % service.port)
    try:
        config = (await asyncio.to_thread(make_run, tmp_path, tiny_model, 1)).read_text()
        run_dir = await client.start_run(config, ["hard_problems.enabled=false", "evaluation.proxy.enabled=false"])
        events = [e async for e in client.events(run_dir)]
        assert (events[0].stage, events[0].kind) == ("run", "started") and events[-1].kind == "finished"
        status = await client.status(run_dir)
        assert status.state == "finished" and not status.active
        filtered = {s.name: s for s in status.stages}["round-1/filter"]
        assert filtered.summary is not None and filtered.summary["kept"] == 4
    finally:
        await client.close()
        await manager.close()
        await service.stop(0)
