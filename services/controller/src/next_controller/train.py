"""A round's training: the kept samples as training data, and the trainer job that learns from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from next_common.progress import Progress
from next_controller.config import RunConfig
from next_controller.filters import Sample, apply_filters
from next_controller.rows import SampleRow, TrainingExample
from next_controller.rundir import RunDir
from next_controller.services import Services
from next_controller.stages import RunFailedError
from next_tasks.prompts import PromptOptions, training_example
from next_tasks.record import TaskRecord
from nextapi.trainer.config import TrainingConfig
from nextapi.trainer.types import JobState, JobStatus


def training_config(config: RunConfig, data: Path, output: Path, warm_start: str) -> TrainingConfig:
    recipe = config.training.model_dump(exclude={"warm_start"})
    return TrainingConfig(
        **recipe,
        base_model=config.base_model,
        data_path=str(data),
        output_dir=str(output),
        warm_start_adapter=warm_start,
    )


def training_data(
    rows: list[SampleRow],
    tasks: list[TaskRecord],
    traces: dict[str, str | None],
    config: RunConfig,
    registry: Any,
    tokenizer: Any,
) -> tuple[list[TrainingExample], dict[str, Any]]:
    """The filters applied to a round's samples; each kept one as (the prompt sampling sent, its answer)."""
    by_id = {t.task_id: t for t in tasks}
    samples = [
        Sample(r.task_id, r.sample_index, r.text, r.rationale, r.program, r.passed, traces.get(r.task_id))
        for r in sorted(rows, key=lambda r: (r.task_id, r.sample_index))
    ]
    options = {
        "max_completion_chars": config.filters.max_completion_chars,
        "entry_points": {t.task_id: t.entry_point for t in tasks},
    }
    kept, drops = apply_filters(samples, config.filters.names, options, registry)
    examples = []
    for sample in kept:
        assert sample.program is not None  # every filter chain starts by requiring a parsed, passing fix
        prompt, completion = training_example(
            by_id[sample.task_id],
            sample.trace,
            PromptOptions(with_trace=True, shots=0),
            sample.rationale,
            sample.program,
            tokenizer,
        )
        examples.append(TrainingExample(prompt, completion, sample.task_id, sample.sample_index))
    summary = {
        "samples": len(samples),
        "kept": len(kept),
        "drops": drops,
        "tasks_kept": len({s.task_id for s in kept}),
    }
    return examples, summary


async def train_adapter(services: Services, job: TrainingConfig, run_dir: RunDir, name: str, progress: bool) -> None:
    """Start (or re-attach to) round ``name``'s trainer job and follow it to the end; a failed job fails the stage."""
    last: JobStatus | None = None
    bar = Progress("%s train" % name, unit="step", enabled=progress)
    async for status in services.train(job):
        last = status
        if status.progress.total_steps:
            bar.set_total(status.progress.total_steps)
        if status.progress.step > bar.n:
            bar.set_postfix(loss="%.4f" % status.progress.loss)
            bar.advance_to(status.progress.step)
            run_dir.event(stage=name + "/train", kind="progress", step=status.progress.step, loss=status.progress.loss)
    bar.close()
    if last is None or last.state is not JobState.SUCCEEDED:
        reason = last.reason if last else "no job"
        raise RunFailedError("%s: training failed: %s" % (name, reason))
