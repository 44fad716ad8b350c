"""A resumed controller re-attaches to its round's training job if the trainer is still running it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from next_trainer.server import start_server
from next_trainer.settings import TrainerSettings
from nextapi.trainer.client import GrpcTrainerClient, same_training, start_or_attach
from nextapi.trainer.config import parse_config
from tests.trainer.conftest import base_config, build_tiny_model, write_data

pytest.importorskip("torch")


def test_configs_match_on_settings_and_resolved_paths(tmp_path: Path) -> None:
    config = parse_config(
        {"base_model": "m", "output_dir": str(tmp_path / "out"), "data_path": str(tmp_path / "d.jsonl"), "seed": 1}
    )
    same = config.model_copy(update={"output_dir": str(tmp_path / "x" / ".." / "out")})
    assert same_training(config, same)
    assert not same_training(config, same.model_copy(update={"seed": 2}))


async def test_a_running_job_is_attached_and_a_different_one_refused(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model")
    data = write_data(tmp_path / "train.jsonl")
    config = parse_config(base_config(model, data, tmp_path / "round-1" / "adapter", optim={"max_steps": 100_000}))
    service, manager = await start_server(TrainerSettings(host="127.0.0.1", port=0, storage_root=str(tmp_path)))
    client = GrpcTrainerClient("127.0.0.1:%d" % service.port)
    try:
        first = await start_or_attach(client, config)
        # the controller is restarted and resumes the round: the same job, not a failed run
        assert await start_or_attach(client, config) == first
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await start_or_attach(client, config.model_copy(update={"seed": config.seed + 1}))
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        await client.cancel(first)
    finally:
        await client.close()
        await manager.close()
        await service.stop(0)
