"""A training job's settings: one typed, validated object shared by the CLI, the server, the worker,
the client and the controller (a run file's ``training`` section is a ``TrainingRecipe``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from next_common.config_files import apply_overrides, read_mapping, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraConfig(_Strict):
    # Serving-safe defaults: all linear layers, no DoRA, no modules_to_save, no trained
    # embeddings; vLLM rejects such adapters and TGI ignores the extra weights.
    r: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"

    @field_validator("target_modules", mode="before")
    @classmethod
    def _all_linear(cls, value: Any) -> Any:
        return "all-linear" if value == ["all-linear"] else value  # the proto can only carry a list


class OptimConfig(_Strict):
    learning_rate: float = Field(2e-4, gt=0, le=1)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(0, ge=0, description="Optimizer steps; 0 means as many as `epochs` needs.")
    batch_size: int = Field(4, ge=1, description="Examples per device per forward pass.")
    gradient_accumulation_steps: int = Field(1, ge=1)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)


class TrainingRecipe(_Strict):
    """How to train: everything but what to train on and where the adapter goes."""

    seed: int = Field(0, ge=0)
    lora: LoraConfig = LoraConfig()
    optim: OptimConfig = OptimConfig()
    max_length: int = Field(2048, ge=8)
    overlong: Literal["drop", "truncate"] = "drop"
    batching: Literal["group_by_length", "random", "sequential"] = "group_by_length"
    gradient_checkpointing: bool = False
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 on GPUs that have it and on CPUs with AMX/AVX512-BF16, else fp32."
    )
    save_steps: int = Field(50, ge=1, description="Checkpoint every N optimizer steps.")
    keep_checkpoints: int = Field(2, ge=1)
    logging_steps: int = Field(1, ge=1)
    export_merged: bool = False
    processes: int = Field(1, ge=1, description="Data-parallel processes (torchrun) on this node.")
    fsdp: bool = False
    tensorboard: bool = True


class TrainingConfig(TrainingRecipe):
    """One training job: a recipe plus the model, the data and the output."""

    base_model: str = Field(min_length=1, description="Hub id, local folder, .gguf file or a packaged model name.")
    data_path: str = Field(min_length=1, description='JSONL of {"prompt": ..., "completion": ...}.')
    output_dir: str = Field(min_length=1, description="Where the adapter is published; must not exist yet.")
    warm_start_adapter: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        if self.fsdp and self.processes < 2:
            raise ValueError("fsdp shards over processes: set processes >= 2")
        if Path(self.output_dir).resolve() == Path(self.data_path).resolve():
            raise ValueError("output_dir and data_path are the same path")
        return self

    @property
    def work_dir(self) -> Path:
        """Checkpoints, logs and progress of the job, beside the output so a rerun finds them."""
        out = Path(self.output_dir)
        return out.with_name(out.name + ".work")


def parse_config(raw: Any, where: str = "config") -> TrainingConfig:
    """Validate ``raw``; errors name the key, e.g. ``config: optim.learning_rate: ...``."""
    return validate(TrainingConfig, raw, where)


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainingConfig:
    """Read a YAML (or JSON) file; ``overrides`` are ``--set`` pairs (``optim.max_steps=50``)."""
    return parse_config(apply_overrides(read_mapping(path), overrides or []), str(path))
