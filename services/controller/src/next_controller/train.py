"""The trainer request for a round: the run's training settings as a TrainingSpec."""

from __future__ import annotations

from pathlib import Path

from next_controller.config import RunConfig
from nextapi.trainer.v1 import trainer_service_pb2 as tpb


def training_spec(config: RunConfig, data: Path, output: Path, warm_start: str) -> tpb.TrainingSpec:
    t = config.training
    return tpb.TrainingSpec(
        base_model=config.base_model,
        data_path=str(data),
        output_dir=str(output),
        seed=t.seed,
        warm_start_adapter=warm_start,
        lora=tpb.LoraSettings(r=t.lora_r, alpha=t.lora_alpha, dropout=t.lora_dropout),
        optim=tpb.OptimSettings(
            learning_rate=t.learning_rate,
            epochs=t.epochs,
            max_steps=t.max_steps,
            batch_size=t.batch_size,
            gradient_accumulation_steps=t.gradient_accumulation_steps,
            warmup_ratio=-1,  # the trainer's default
        ),
        max_length=t.max_length,
        save_steps=t.save_steps,
        processes=t.processes,
    )
