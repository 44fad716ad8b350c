"""The trainer request for a round (the run's training settings as a TrainingSpec), started or re-attached."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc

from next_controller.config import RunConfig
from nextapi.trainer.v1 import trainer_service_pb2 as tpb
from nextapi.trainer.v1 import trainer_service_pb2_grpc as tpb_grpc

log = logging.getLogger(__name__)


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


def _same_path(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def same_training(running: tpb.TrainingSpec, wanted: tpb.TrainingSpec) -> bool:
    """Whether a running job is the one ``wanted`` describes (paths compared after resolving)."""
    paths = ("output_dir", "data_path", "warm_start_adapter")
    if not all(_same_path(getattr(running, p), getattr(wanted, p)) for p in paths):
        return False
    a, b = tpb.TrainingSpec(), tpb.TrainingSpec()
    a.CopyFrom(running)
    b.CopyFrom(wanted)
    a.output_dir = a.data_path = a.warm_start_adapter = ""
    b.output_dir = b.data_path = b.warm_start_adapter = ""
    return a == b


async def start_or_attach(trainer: tpb_grpc.TrainerServiceAsyncStub, spec: tpb.TrainingSpec) -> str:
    """Start the round's training job, or re-attach to it if it is still running.

    A controller that was stopped (a pod evicted, a laptop closed) and resumed finds the trainer
    still training the same round: StartTraining answers ALREADY_EXISTS, and the job with the
    same spec is watched instead of failing the run.
    """
    try:
        started = await trainer.StartTraining(tpb.StartTrainingRequest(spec=spec), timeout=600)
        return str(started.job.job_id)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        listed = await trainer.ListJobs(tpb.ListJobsRequest(), timeout=60)
        for job in listed.jobs:
            if job.state in (tpb.JOB_STATE_QUEUED, tpb.JOB_STATE_RUNNING) and same_training(job.spec, spec):
                log.info("re-attaching to training job %s, still running into %s", job.job_id, spec.output_dir)
                return str(job.job_id)
        raise
