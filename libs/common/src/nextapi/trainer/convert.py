"""Translation between the trainer's protos and its domain types, in both directions.

The proto's zero values mean "the default", so a spec maps to a config by passing on only the
fields a client set; the config's own validation then names any impossible value.
"""

from __future__ import annotations

from typing import Any

from nextapi.trainer.config import TrainingConfig, parse_config
from nextapi.trainer.types import DataReport, JobState, JobStatus, Progress
from nextapi.trainer.v1 import trainer_service_pb2 as pb

_STATES = {
    JobState.QUEUED: pb.JOB_STATE_QUEUED,
    JobState.RUNNING: pb.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: pb.JOB_STATE_SUCCEEDED,
    JobState.FAILED: pb.JOB_STATE_FAILED,
    JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
}
_STATES_BACK = {v: k for k, v in _STATES.items()}


def _set(message: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fields with non-default values (for scalars proto3 cannot tell unset from zero)."""
    out: dict[str, Any] = {}
    for descriptor, value in message.ListFields():
        if descriptor.name in skip or descriptor.message_type is not None:
            continue
        out[descriptor.name] = list(value) if descriptor.is_repeated else value
    return out


def config_from_spec(spec: pb.TrainingSpec) -> TrainingConfig:
    raw = _set(spec, skip=("lora", "optim"))
    lora = _set(spec.lora)
    optim = _set(spec.optim)
    # For these two, 0 is a real value and a negative one means the default.
    lora.pop("dropout", None)
    if spec.HasField("lora") and spec.lora.dropout >= 0:
        lora["dropout"] = spec.lora.dropout
    optim.pop("warmup_ratio", None)
    if spec.HasField("optim") and spec.optim.warmup_ratio >= 0:
        optim["warmup_ratio"] = spec.optim.warmup_ratio
    raw["lora"], raw["optim"] = lora, optim
    return parse_config(raw, "spec")


def spec_from_config(config: TrainingConfig) -> pb.TrainingSpec:
    lora, optim = config.lora, config.optim
    targets = [lora.target_modules] if isinstance(lora.target_modules, str) else list(lora.target_modules)
    return pb.TrainingSpec(
        base_model=config.base_model,
        data_path=config.data_path,
        output_dir=config.output_dir,
        seed=config.seed,
        warm_start_adapter=config.warm_start_adapter,
        lora=pb.LoraSettings(r=lora.r, alpha=lora.alpha, dropout=lora.dropout, target_modules=targets),
        optim=pb.OptimSettings(
            learning_rate=optim.learning_rate,
            epochs=optim.epochs,
            max_steps=optim.max_steps,
            batch_size=optim.batch_size,
            gradient_accumulation_steps=optim.gradient_accumulation_steps,
            lr_scheduler=optim.lr_scheduler,
            warmup_ratio=optim.warmup_ratio,
            weight_decay=optim.weight_decay,
        ),
        max_length=config.max_length,
        overlong=config.overlong,
        batching=config.batching,
        gradient_checkpointing=config.gradient_checkpointing,
        precision=config.precision,
        save_steps=config.save_steps,
        export_merged=config.export_merged,
        processes=config.processes,
        fsdp=config.fsdp,
    )


def job_to_proto(status: JobStatus) -> pb.Job:
    p = status.progress
    data = status.data
    return pb.Job(
        job_id=status.job_id,
        state=_STATES[status.state],
        spec=spec_from_config(status.config),
        progress=pb.Progress(
            step=p.step,
            total_steps=p.total_steps,
            epoch=p.epoch,
            loss=p.loss,
            learning_rate=p.learning_rate,
            tokens_per_second=p.tokens_per_second,
            eta_seconds=p.eta_seconds,
            elapsed_seconds=p.elapsed_seconds,
        ),
        data=pb.DataReport(**data.as_dict()) if data else None,
        reason=status.reason,
        adapter_path=status.adapter_path,
        merged_path=status.merged_path,
        resumed_from_step=status.resumed_from_step,
        final_loss=status.final_loss,
    )


def job_from_proto(job: pb.Job) -> JobStatus:
    p = job.progress
    return JobStatus(
        job_id=job.job_id,
        state=_STATES_BACK[job.state],
        config=config_from_spec(job.spec),
        progress=Progress(
            p.step,
            p.total_steps,
            p.epoch,
            p.loss,
            p.learning_rate,
            p.tokens_per_second,
            p.eta_seconds,
            p.elapsed_seconds,
        ),
        data=DataReport(**_set(job.data)) if job.HasField("data") else None,
        reason=job.reason,
        adapter_path=job.adapter_path,
        merged_path=job.merged_path,
        resumed_from_step=job.resumed_from_step,
        final_loss=job.final_loss,
    )
