"""Algorithm 1 of the paper (NExT: self-training with naturalized execution traces) as resumable
stages over the tracer, sampler and trainer. Each step below cites the paper's line.

    prepare          traces of the first failing shown test, for every task
    hard             base-model pass@1 on the training tasks; keep those below the threshold   (line 1)
    eval/base        the base model on the evaluation sets
    round-i/sample   samples from the current model, verified as they arrive                   (lines 4-6)
    round-i/filter   filter plugins -> prompt/completion training data                          (line 7)
    round-i/train    LoRA from the base model (or warm start) on this round's data              (line 8)
    round-i/activate the new adapter on the sampler, verified by a canary
    round-i/eval     the new model on the evaluation sets                                       (line 9)
    select           the best model on the dev metric; report: tables, plots, HTML             (line 10)

The stage wrapper (``stages``) records each stage's outputs with their hashes; a stage found
complete is skipped, so a killed run resumes with the same command. Sampling and grading are in
``pipeline``, evaluation and selection in ``evaluation``, training data and jobs in ``train``.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError
from next_controller.config import RunConfig, TaskSet, dump_config
from next_controller.evaluation import Evaluation, select
from next_controller.filters import run_filters
from next_controller.pipeline import Pipeline, sampling_params
from next_controller.rows import read_rows
from next_controller.rundir import RunDir, read_json, read_jsonl, write_json, write_jsonl
from next_controller.services import Services
from next_controller.stages import RunFailedError, Stages
from next_controller.train import train_adapter, training_config, training_data
from next_tasks.record import TaskFormatError, TaskRecord, load_tasks

Outputs = tuple[list[Path], dict[str, Any]]


def load_task_set(task_set: TaskSet) -> list[TaskRecord]:
    """One task file of a run, validated line by line, cut to its limit; errors name the key."""
    try:
        tasks = load_tasks(task_set.path)
    except TaskFormatError as exc:  # names the file and the line
        raise InvalidArgumentError("%s: %s" % (task_set.key, exc)) from None
    tasks = tasks[: task_set.limit] if task_set.limit else tasks
    if not tasks:
        raise InvalidArgumentError("%s: %s holds no tasks" % (task_set.key, task_set.path))
    return tasks


class Run:
    def __init__(self, config: RunConfig, services: Services, tokenizer: Any, progress: bool = True) -> None:
        self.config = config
        self.services = services
        self.dir = RunDir(config.path.absolute())
        self.filters = run_filters(config.filters.names)
        self.tasks: dict[str, list[TaskRecord]] = {}
        self.stages = Stages(self.dir, services.clock, progress)
        self.pipeline = Pipeline(config, services, tokenizer, self.stages)
        self.evaluation = Evaluation(config, self.pipeline, self.tasks, self.dir.root)

    async def execute(self) -> dict[str, Any]:
        resuming = self.dir.claim(dump_config(self.config))
        self.dir.event(stage="run", kind="resumed" if resuming else "started")
        try:
            return await self._algorithm()
        except Exception as exc:
            self.dir.event(stage="run", kind="failed", error=str(exc))
            raise

    async def _algorithm(self) -> dict[str, Any]:
        stage = self.stages.run
        for task_set in self.config.data.sets():
            self.tasks[task_set.name] = load_task_set(task_set)
        await stage("prepare", self._prepare)
        self.pipeline.traces = read_json(self.dir.root / "prepare" / "traces.json")
        hard = await stage("hard", self._hard)
        train = [t for t in self.tasks["train"] if t.task_id in set(hard["selected"])]
        await stage("eval/base", partial(self.evaluation.evaluate, "eval/base", ""))
        adapter = ""  # the model that samples: the base model, then the last trained round's adapter
        for i in range(1, self.config.rounds + 1):
            name = "round-%d" % i
            await stage(name + "/sample", partial(self._sample_round, name, train, adapter))
            kept = await stage(name + "/filter", partial(self._filter_round, name, train))
            if kept["kept"] == 0:
                self.dir.event(stage=name, kind="empty", message="the filters kept no sample in %s" % name)
                if self.config.filters.on_empty == "stop":
                    raise RunFailedError("%s: the filters kept no sample; stopping (filters.on_empty)" % name)
                continue  # nothing to train on: the next round samples from the same model
            await stage(name + "/train", partial(self._train, name, adapter))
            await stage(name + "/activate", partial(self._activate, name))
            adapter = name
            await stage(name + "/eval", partial(self.evaluation.evaluate, name + "/eval", name))
        await stage("select", partial(select, self.dir, self.config))
        from next_controller.report import write_report

        await stage("report", partial(write_report, self.dir.root))
        summary: dict[str, Any] = read_json(self.dir.root / "summary.json")
        self.dir.event(stage="run", kind="finished", best=summary["best"])
        return summary

    async def _prepare(self) -> Outputs:
        from next_tasks.prompts import first_failing_trace

        unique = {t.task_id: t for tasks in self.tasks.values() for t in tasks}
        bar = self.stages.bar(len(unique), "traces")

        async def one(task: TaskRecord) -> tuple[str, str | None]:
            async with self.services.tracer_slots:
                with self.services.clock.call():
                    trace = await first_failing_trace(
                        task, self.services.tracer, self.config.sampling.trace_format, self.config.tracer_timeout_s
                    )
            bar.update()
            return task.task_id, trace

        traces = dict(await asyncio.gather(*(one(t) for t in unique.values())))
        bar.close()
        out = self.dir.root / "prepare" / "traces.json"
        write_json(out, traces)
        counts = {name: len(tasks) for name, tasks in self.tasks.items()}
        return [out], {"tasks": counts, "traced": sum(1 for v in traces.values() if v)}

    async def _hard(self) -> Outputs:
        """Line 1: the training problems the base model rarely solves (all of them when disabled)."""
        hp, s = self.config.hard_problems, self.config.sampling
        train = self.tasks["train"]
        out = self.dir.root / "hard" / "selection.json"
        if not hp.enabled:
            write_json(out, {"enabled": False, "selected": [t.task_id for t in train]})
            return [out], {"enabled": False, "selected": [t.task_id for t in train], "candidates": len(train)}
        log_path = self.dir.root / "hard" / "samples.jsonl"
        items = self.pipeline.items(train, True, s.shots)
        params = sampling_params(self.config, hp.samples, s.temperature, s.seed)
        rows = await self.pipeline.sample_and_grade(log_path, items, params, "", True, "hard")
        correct: dict[str, int] = {t.task_id: 0 for t in train}
        for r in rows:
            correct[r.task_id] += int(r.passed)
        estimate = {tid: c / hp.samples for tid, c in correct.items()}
        selected = [tid for tid, p in estimate.items() if p < hp.threshold]
        write_json(out, {"enabled": True, "pass_at_1": estimate, "selected": selected, "threshold": hp.threshold})
        return [log_path, out], {"enabled": True, "selected": selected, "candidates": len(train)}

    async def _sample_round(self, name: str, train: list[TaskRecord], adapter: str) -> Outputs:
        """Lines 4-6: rationales and fixes sampled with the trace, each fix run against the shown tests."""
        s = self.config.sampling
        shots = s.shots if not adapter else 0  # fine-tuned models are prompted 0-shot, as at test time
        path = self.dir.root / name / "samples.jsonl"
        seed = s.seed + 1000 * int(name.split("-")[1])
        items = self.pipeline.items(train, True, shots)
        params = sampling_params(self.config, s.samples_per_problem, s.temperature, seed)
        rows = await self.pipeline.sample_and_grade(path, items, params, adapter, True, name)
        return [path], {"samples": len(rows), "passed": sum(1 for r in rows if r.passed), "adapter": adapter}

    async def _filter_round(self, name: str, train: list[TaskRecord]) -> Outputs:
        """Line 7: the samples that pass every filter become (prompt, rationale + fix) training data."""
        rows = read_rows(self.dir.root / name / "samples.jsonl")
        examples, summary = training_data(
            rows, train, self.pipeline.traces, self.config, self.filters, self.pipeline.tokenizer
        )
        data = self.dir.root / name / "train.jsonl"
        write_jsonl(data, [e.to_json() for e in examples])
        report = self.dir.root / name / "filters.json"
        write_json(report, summary)
        return [data, report], summary

    async def _train(self, name: str, previous: str) -> Outputs:
        """Line 8: LoRA on this round's data, from the base model (the paper) or the previous adapter."""
        out = self.dir.root / name / "adapter"
        warm = str(self.dir.root / previous / "adapter") if previous and self.config.training.warm_start else ""
        if not (out / "next_training.json").exists():  # not published yet: start, or re-attach and resume
            job = training_config(self.config, self.dir.root / name / "train.jsonl", out, warm)
            await train_adapter(self.services, job, self.dir, name, self.stages.progress)
        meta = read_json(out / "next_training.json")
        return [out], {"adapter": str(out), "metrics": meta["metrics"], "data": meta["data"]}

    async def _activate(self, name: str) -> Outputs:
        # The canary is a prompt the adapter was trained on: a lightly trained adapter can leave
        # the greedy output of an unrelated prompt unchanged, which would read as "not active".
        canary = read_jsonl(self.dir.root / name / "train.jsonl")[0]["prompt"]
        reply = await self.services.activate(name, str(self.dir.root / name / "adapter"), canary)
        if not reply.verified:
            raise RunFailedError("%s: the sampler did not verify the adapter: %s" % (name, reply.message))
        out = self.dir.root / name / "activation.json"
        result = {
            "adapter": name,
            "verified": True,
            "base_output": reply.base_output,
            "adapter_output": reply.adapter_output,
        }
        write_json(out, result)
        return [out], result
