"""Runs training jobs as child processes and follows them through their progress files.

A job is validated before anything is spawned (data, base model, output location), so bad
input costs no compute. Each job then runs ``next_trainer.worker`` in its own session (or
``torchrun`` of it for data parallelism): a crash, an out-of-memory kill or a cancel ends
that process group only, and the reason reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from next_common.errors import (
    AlreadyExistsError,
    NotFoundError,
    ResourceExhaustedError,
)
from next_common.jsonlines import Tail
from next_common.models import check_model_exists
from next_common.paths import confine
from next_common.process import child_env
from next_trainer import metrics
from next_trainer.data import read_examples
from next_trainer.events import EVENTS_FILE
from next_trainer.publish import is_complete_adapter
from next_trainer.settings import TrainerSettings
from nextapi.trainer.config import TrainingConfig
from nextapi.trainer.types import DataReport, JobState, JobStatus, Progress

log = logging.getLogger(__name__)

WORKER_LOG = "worker.log"
CONFIG_FILE = "config.json"


class _Job:
    def __init__(self, status: JobStatus) -> None:
        self.status = status
        self.changed = asyncio.Condition()
        self.process: asyncio.subprocess.Process | None = None
        self.cancel_requested = False
        self.task: asyncio.Task[None] | None = None

    async def update(self, **changes: object) -> None:
        self.status = dataclasses.replace(self.status, **changes)  # type: ignore[arg-type]
        async with self.changed:
            self.changed.notify_all()


class JobManager:
    def __init__(self, settings: TrainerSettings | None = None) -> None:
        self.settings = settings or TrainerSettings()
        self._jobs: dict[str, _Job] = {}
        self._slots = asyncio.Semaphore(self.settings.max_running_jobs)

    # -- validation ----------------------------------------------------------------------
    def _confine(self, path: str, what: str) -> str:
        return str(confine(path, self.settings.storage_root, what, "storage root")) if path else path

    def _validate(self, config: TrainingConfig) -> TrainingConfig:
        config = config.model_copy(
            update={
                "data_path": self._confine(config.data_path, "data_path"),
                "output_dir": self._confine(config.output_dir, "output_dir"),
                "warm_start_adapter": self._confine(config.warm_start_adapter, "warm_start_adapter"),
            }
        )
        output = Path(config.output_dir)
        if output.exists():
            held = " (it already holds an adapter)" if is_complete_adapter(output) else ""
            raise AlreadyExistsError("output_dir %s exists%s; choose a new location" % (output, held))
        for job in self._jobs.values():
            if not job.status.state.ended and job.status.config.output_dir == config.output_dir:
                raise AlreadyExistsError("job %s is already training into %s" % (job.status.job_id, output))
        if config.warm_start_adapter and not (Path(config.warm_start_adapter) / "adapter_config.json").is_file():
            raise NotFoundError("warm_start_adapter %s: no adapter_config.json there" % config.warm_start_adapter)
        read_examples(config.data_path)  # line-numbered errors and "empty" before any compute
        check_model_exists(config.base_model)
        return config

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, config: TrainingConfig) -> JobStatus:
        queued = sum(1 for j in self._jobs.values() if j.status.state is JobState.QUEUED)
        if queued >= self.settings.max_queued_jobs and self._slots.locked():
            raise ResourceExhaustedError("%d training jobs are already waiting; retry later" % queued)
        config = await asyncio.to_thread(self._validate, config)
        job = _Job(JobStatus(job_id=uuid.uuid4().hex[:12], state=JobState.QUEUED, config=config))
        self._jobs[job.status.job_id] = job
        job.task = asyncio.create_task(self._run(job), name="train-%s" % job.status.job_id)
        metrics.JOBS_STARTED.inc()
        return job.status

    def get(self, job_id: str) -> JobStatus:
        return self._job(job_id).status

    def jobs(self) -> list[JobStatus]:
        return [job.status for job in self._jobs.values()]

    async def watch(self, job_id: str) -> AsyncIterator[JobStatus]:
        """The job now, then after every change, until it has ended."""
        job = self._job(job_id)
        seen = job.status
        yield seen
        while not seen.state.ended:
            async with job.changed:
                await job.changed.wait_for(lambda previous=seen: job.status is not previous)  # type: ignore[misc]
            seen = job.status
            yield seen

    async def wait(self, job_id: str) -> JobStatus:
        last = self.get(job_id)
        async for status in self.watch(job_id):
            last = status
        return last

    async def cancel(self, job_id: str) -> JobStatus:
        job = self._job(job_id)
        if job.status.state.ended:
            return job.status
        job.cancel_requested = True
        if job.process is None:
            if job.task:
                job.task.cancel()
            await job.update(state=JobState.CANCELLED, reason="cancelled before it started")
            return job.status
        self._signal(job.process, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(job.process.wait()), self.settings.cancel_grace_s)
        except TimeoutError:
            self._signal(job.process, signal.SIGKILL)
        return await self.wait(job_id)

    async def close(self) -> None:
        """Stop every job; a job stopped this way resumes from its checkpoints when started again."""
        for job in list(self._jobs.values()):
            if not job.status.state.ended:
                await self.cancel(job.status.job_id)

    def _job(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise NotFoundError("no training job %r" % job_id) from None

    @staticmethod
    def _signal(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    # -- running -------------------------------------------------------------------------
    def _command(self, config: TrainingConfig, config_file: Path) -> list[str]:
        worker = ["-m", "next_trainer.worker", str(config_file)]
        if config.processes == 1:
            return [sys.executable, *worker]
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=%d" % config.processes,
            *worker,
        ]

    async def _run(self, job: _Job) -> None:
        async with self._slots:
            if job.cancel_requested:
                return
            config = job.status.config
            work = config.work_dir
            work.mkdir(parents=True, exist_ok=True)
            config_file = work / CONFIG_FILE
            tmp = config_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(config.model_dump(mode="json"), indent=2), encoding="utf-8")
            tmp.replace(config_file)
            events_path = work / EVENTS_FILE
            reader = Tail(events_path, events_path.stat().st_size if events_path.exists() else 0)
            env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
            if config.processes == 1:  # torchrun's workers are watched by torchrun instead
                env = child_env(env)
            with open(work / WORKER_LOG, "ab") as worker_log:
                job.process = await asyncio.create_subprocess_exec(
                    *self._command(config, config_file),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=worker_log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # one process group to signal, apart from the server's
                )
            await job.update(state=JobState.RUNNING)
            metrics.JOBS_RUNNING.inc()
            log.info(
                "job %s started (pid %d): %s -> %s",
                job.status.job_id,
                job.process.pid,
                config.data_path,
                config.output_dir,
            )
            try:
                outcome: dict[str, object] = {}
                while True:
                    try:
                        await asyncio.wait_for(asyncio.shield(job.process.wait()), self.settings.poll_interval_s)
                        exited = True
                    except TimeoutError:
                        exited = False
                    for event in reader.read_new():
                        await self._apply(job, event, outcome)
                    if exited:
                        break
                await self._finish(job, job.process.returncode, outcome)
            finally:
                metrics.JOBS_RUNNING.dec()
                if job.process.returncode is None:  # the server is going away mid-job
                    self._signal(job.process, signal.SIGKILL)

    async def _apply(self, job: _Job, event: dict[str, object], outcome: dict[str, object]) -> None:
        kind = event.get("type")
        if kind == "data":
            report = DataReport(**{k: v for k, v in event.items() if k != "type"})  # type: ignore[arg-type]
            await job.update(data=report)
        elif kind == "started":
            await job.update(resumed_from_step=int(event.get("resumed_from_step", 0)))  # type: ignore[call-overload]
        elif kind == "progress":
            await job.update(progress=Progress.from_event(event))
        elif kind in ("succeeded", "failed"):
            outcome.clear()
            outcome.update(event)

    async def _finish(self, job: _Job, returncode: int | None, outcome: dict[str, object]) -> None:
        if job.cancel_requested:
            await job.update(state=JobState.CANCELLED, reason="cancelled by request")
        elif returncode == 0 and outcome.get("type") == "succeeded":
            await job.update(
                state=JobState.SUCCEEDED,
                adapter_path=str(outcome.get("adapter_path", "")),
                merged_path=str(outcome.get("merged_path", "")),
                final_loss=float(outcome.get("final_loss", 0.0)),  # type: ignore[arg-type]
            )
        else:
            await job.update(state=JobState.FAILED, reason=self._failure_reason(job, returncode, outcome))
        metrics.JOBS_ENDED.labels(job.status.state.value).inc()
        log.info("job %s %s %s", job.status.job_id, job.status.state.value, job.status.reason)

    @staticmethod
    def _failure_reason(job: _Job, returncode: int | None, outcome: dict[str, object]) -> str:
        if outcome.get("type") == "failed":
            return str(outcome.get("reason", "failed"))
        if returncode is not None and returncode < 0:
            name = signal.Signals(-returncode).name
            hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
            return "the training process was killed by %s%s" % (name, hint)
        tail = _tail(job.status.config.work_dir / WORKER_LOG)
        return "the training process exited with code %s: %s" % (returncode, tail)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(line for line in text.strip().splitlines()[-lines:])
