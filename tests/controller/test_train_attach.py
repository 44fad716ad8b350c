"""A resumed controller re-attaches to its round's training job if the trainer is still running it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from next_controller.train import same_training, start_or_attach
from next_trainer.config import parse_config
from next_trainer.convert import spec_from_config
from next_trainer.server import start_server
from next_trainer.settings import TrainerSettings
from nextapi.trainer.v1 import trainer_service_pb2 as pb
from nextapi.trainer.v1 import trainer_service_pb2_grpc as pb_grpc
from tests.trainer.conftest import base_config, build_tiny_model, write_data

pytest.importorskip("torch")


def test_specs_match_on_settings_and_resolved_paths(tmp_path: Path) -> None:
    spec = pb.TrainingSpec(
        base_model="m", output_dir=str(tmp_path / "out"), data_path=str(tmp_path / "d.jsonl"), seed=1
    )
    same = pb.TrainingSpec()
    same.CopyFrom(spec)
    same.output_dir = str(tmp_path / "x" / ".." / "out")
    assert same_training(spec, same)
    same.seed = 2
    assert not same_training(spec, same)


async def test_a_running_job_is_attached_and_a_different_one_refused(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model")
    data = write_data(tmp_path / "train.jsonl")
    config = base_config(model, data, tmp_path / "round-1" / "adapter", optim={"max_steps": 100_000})
    spec = spec_from_config(parse_config(config))
    service, manager = await start_server(TrainerSettings(host="127.0.0.1", port=0, storage_root=str(tmp_path)))
    try:
        async with grpc.aio.insecure_channel("127.0.0.1:%d" % service.port) as channel:
            stub = pb_grpc.TrainerServiceStub(channel)
            first = await start_or_attach(stub, spec)
            # the controller is restarted and resumes the round: the same job, not a failed run
            assert await start_or_attach(stub, spec) == first
            other = pb.TrainingSpec()
            other.CopyFrom(spec)
            other.seed = spec.seed + 1
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await start_or_attach(stub, other)
            assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
            await stub.CancelJob(pb.CancelJobRequest(job_id=first))
    finally:
        await manager.close()
        await service.stop(0)
