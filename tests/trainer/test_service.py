"""TrainerService over a real loopback channel: progress streams, cancel, crashes, bad input."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from next_trainer.server import start_server
from next_trainer.settings import TrainerSettings
from nextapi.trainer.convert import spec_from_config
from nextapi.trainer.v1 import trainer_service_pb2 as pb
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from tests.trainer.conftest import base_config, processes_of

pytest.importorskip("torch")

SERVICE = "nextapi.trainer.v1.TrainerService"


class Client:
    def __init__(self, channel: grpc.aio.Channel, root: Path) -> None:
        self.stub = pb_grpc.TrainerServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)
        self.root = root

    async def start(self, spec: pb.TrainingSpec) -> pb.Job:
        return (await self.stub.StartTraining(pb.StartTrainingRequest(spec=spec))).job

    async def watch(self, job_id: str) -> list[pb.Job]:
        return [r.job async for r in self.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job_id))]

    async def serving(self) -> bool:
        reply = await self.health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = TrainerSettings(host="127.0.0.1", port=0, storage_root=str(tmp_path), cancel_grace_s=5)
    service, manager = await start_server(settings)
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            yield Client(channel, tmp_path)
    finally:
        await manager.close()
        await service.stop(0)


def spec(model: Path, data: Path, out: str, **extra: Any) -> pb.TrainingSpec:
    from nextapi.trainer.config import parse_config

    return spec_from_config(parse_config(base_config(model, data, Path(out), **extra)))


async def test_a_job_streams_progress_and_succeeds(client: Client, tiny_model_dir: Path, data_file: Path) -> None:
    job = await client.start(spec(tiny_model_dir, data_file, "adapters/r1", optim={"max_steps": 6}))
    assert job.state == pb.JOB_STATE_QUEUED and job.spec.output_dir == str(client.root / "adapters" / "r1")
    updates = await client.watch(job.job_id)
    final = updates[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.reason
    steps = [u.progress.step for u in updates if u.progress.step]
    assert steps == sorted(steps) and steps[-1] == 6 and final.progress.total_steps == 6
    assert final.progress.loss > 0 and final.progress.learning_rate > 0 and final.data.kept == 16
    assert final.adapter_path == str(client.root / "adapters" / "r1")
    assert (Path(final.adapter_path) / "adapter_model.safetensors").is_file()
    listed = await client.stub.ListJobs(pb.ListJobsRequest())
    assert [j.job_id for j in listed.jobs] == [job.job_id]


async def test_cancel_stops_a_running_job(client: Client, tiny_model_dir: Path, data_file: Path) -> None:
    job = await client.start(spec(tiny_model_dir, data_file, "long", optim={"max_steps": 100_000}))
    async for update in client.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job.job_id)):
        if update.job.progress.step >= 2:
            break
    cancelled = (await client.stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id))).job
    assert cancelled.state == pb.JOB_STATE_CANCELLED and "cancelled" in cancelled.reason
    assert (await client.watch(job.job_id))[-1].state == pb.JOB_STATE_CANCELLED
    assert not (client.root / "long").exists()  # nothing half-written under the output's name
    assert not processes_of(client.root / "long.work")
    again = (await client.stub.CancelJob(pb.CancelJobRequest(job_id=job.job_id))).job
    assert again.state == pb.JOB_STATE_CANCELLED  # cancelling twice is harmless


async def test_crashes_report_failed_and_the_server_keeps_serving(
    client: Client, tiny_model_dir: Path, data_file: Path
) -> None:
    broken = client.root / "broken-model"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_model_dir / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)  # passes validation, fails to load
    job = await client.start(spec(broken, data_file, "crashed"))
    final = (await client.watch(job.job_id))[-1]
    assert final.state == pb.JOB_STATE_FAILED
    assert "safetensors" in final.reason.lower() or "header" in final.reason.lower(), final.reason

    # a training process killed from outside (as the OOM killer would) is FAILED with the signal
    job = await client.start(spec(tiny_model_dir, data_file, "killed", optim={"max_steps": 100_000}))
    async for update in client.stub.WatchTraining(pb.WatchTrainingRequest(job_id=job.job_id)):
        if update.job.progress.step >= 1:
            break
    for pid in processes_of(client.root / "killed.work"):
        os.kill(pid, signal.SIGKILL)
    final = (await client.watch(job.job_id))[-1]
    assert final.state == pb.JOB_STATE_FAILED and "SIGKILL" in final.reason, final.reason

    assert await client.serving()
    ok = await client.start(spec(tiny_model_dir, data_file, "after", optim={"max_steps": 2}))
    assert (await client.watch(ok.job_id))[-1].state == pb.JOB_STATE_SUCCEEDED


async def test_bad_input_is_refused_before_any_compute(client: Client, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": 1,\n')

    async def code_and_details(s: pb.TrainingSpec) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.start(s)
        return info.value.code(), info.value.details() or ""

    code, details = await code_and_details(spec(tiny_model_dir, data, "o"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "d.jsonl:2: not valid JSON" in details
    data.write_text("")
    code, details = await code_and_details(spec(tiny_model_dir, data, "o"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no examples" in details
    data.write_text(json.dumps({"prompt": "a", "completion": "b"}) + "\n")
    code, details = await code_and_details(spec(tmp_path / "no-such-model", data, "o"))
    assert code == grpc.StatusCode.NOT_FOUND and "no-such-model" in details
    (tmp_path / "taken").mkdir()
    code, details = await code_and_details(spec(tiny_model_dir, data, "taken"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "taken exists" in details
    code, details = await code_and_details(spec(tiny_model_dir, data, "../../etc/adapter"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "outside the storage root" in details
    bad = spec(tiny_model_dir, data, "o")
    bad.optim.learning_rate = 5.0  # a client that skips our config validation
    code, details = await code_and_details(bad)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "optim.learning_rate" in details
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await client.stub.GetJob(pb.GetJobRequest(job_id="nope"))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert not list(tmp_path.glob("o*"))  # nothing was started
    assert await client.serving()
