"""The trainer job of a round: the run's training recipe with the round's data and output."""

from __future__ import annotations

from pathlib import Path

from next_controller.config import RunConfig
from nextapi.trainer.config import TrainingConfig


def training_config(config: RunConfig, data: Path, output: Path, warm_start: str) -> TrainingConfig:
    recipe = config.training.model_dump(exclude={"warm_start"})
    return TrainingConfig(
        **recipe,
        base_model=config.base_model,
        data_path=str(data),
        output_dir=str(output),
        warm_start_adapter=warm_start,
    )
