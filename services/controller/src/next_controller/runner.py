"""Algorithm 1 of the paper as resumable stages over the tracer, sampler and trainer.

    prepare   traces of the first failing shown test, for every task
    hard      base-model pass@1 on the training tasks; keep those below the threshold (once)
    eval/base the base model on the evaluation sets
    round-i/sample    samples from the current model (base for round 1), verified as they arrive
    round-i/filter    filter plugins -> prompt/completion training data
    round-i/train     LoRA from the base model (or warm start) on this round's data only
    round-i/activate  the new adapter on the sampler, verified by a canary
    round-i/eval      the new model on the evaluation sets
    select    the best model on the dev metric;  report  tables, plots, HTML, TensorBoard

Each stage writes its outputs, then records them with their hashes in the manifest; a
stage found complete is skipped, so a killed run resumes with the same command.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from next_common.errors import FailedPreconditionError, InvalidArgumentError
from next_common.progress import Progress, note
from next_controller.comparison import compare, tally
from next_controller.config import RunConfig, TaskSet, dump_config
from next_controller.filters import Sample, apply_filters, run_filters
from next_controller.grading import grade_completion
from next_controller.progress_metrics import SampleCounts
from next_controller.rundir import AppendLog, RunDir, read_json, read_jsonl, write_json, write_jsonl
from next_controller.services import Services
from next_tasks.metrics import greedy_pass_at_1, mean_pass_at_k, scores
from next_tasks.prompts import PromptOptions, render_messages, to_model_input, training_example
from next_tasks.record import TaskFormatError, TaskRecord, load_tasks
from nextapi.sampler.types import Completion, SamplingParams
from nextapi.trainer.types import JobState, JobStatus

log = logging.getLogger(__name__)

StageFn = Callable[[], Awaitable[tuple[list[Path], dict[str, Any]]]]


class RunFailedError(FailedPreconditionError):
    """A stage ran and did not succeed: training failed, no sample kept, the adapter not verified.

    ``next run`` exits 1 on it (the run ran but did not pass); errors in its input (config,
    data, services) exit 2.
    """


def brief(summary: dict[str, Any], limit: int = 240) -> str:
    """A stage summary's numbers on one line (lists by their length), for progress lines."""
    parts: list[str] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk("%s.%s" % (key, k) if key else str(k), v)
        elif isinstance(value, list):
            parts.append("%s=%d" % (key, len(value)))
        elif isinstance(value, float):
            parts.append("%s=%.4g" % (key, value))
        elif isinstance(value, int) or (isinstance(value, str) and 0 < len(value) <= 40 and "\n" not in value):
            parts.append("%s=%s" % (key, value))  # long texts (model outputs, paths) stay in the manifest

    walk("", summary)
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class PromptItem:
    key: str  # unique within a sample log
    task: TaskRecord
    prompt: str
    trace: str | None
    with_trace: bool


def render_prompt(
    task: TaskRecord, trace: str | None, with_trace: bool, shots: int, trace_format: str, tokenizer: Any
) -> str:
    """Exactly what the model reads for ``task`` (the tokenizer's chat template applied)."""
    options = PromptOptions(with_trace=with_trace, shots=shots, trace_format=trace_format)
    return to_model_input(render_messages(task, trace, options), tokenizer)


def proxy_prompt(task: TaskRecord, rationale: str) -> str:
    """The paper's rationale evaluation: fix the bug from the problem, the program and the rationale alone."""
    return (
        "Problem:\n%s\n\nBuggy program:\n```python\n%s```\n\nAn explanation of the bug:\n%s\n\n"
        "Write the whole fixed program in one ```python block.\n"
        % (task.problem.strip(), task.buggy_program, rationale.strip())
    )


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


def proxy_input(task: TaskRecord, rationale: str, tokenizer: Any) -> str:
    return to_model_input([{"role": "user", "content": proxy_prompt(task, rationale)}], tokenizer)


class Run:
    def __init__(self, config: RunConfig, services: Services, tokenizer: Any, progress: bool = True) -> None:
        self.config = config
        self.services = services
        self.tokenizer = tokenizer
        self.dir = RunDir(config.path.absolute())
        self.progress = progress
        self.filters = run_filters(config.filters.names)
        self.tasks: dict[str, list[TaskRecord]] = {}
        self.traces: dict[str, str | None] = {}

    # -- stage bookkeeping -------------------------------------------------------------------
    async def stage(self, name: str, body: StageFn) -> dict[str, Any]:
        done = self.dir.record(name)
        if done is not None:
            self.dir.event(stage=name, kind="skipped", reason="complete in the manifest")
            self.note("stage %s: complete, skipped" % name)
            return dict(done["summary"])
        self.dir.event(stage=name, kind="started")
        log.info("stage %s", name)
        self.note("stage %s: started" % name)
        started, busy0, cpu0 = time.perf_counter(), self.services.clock.busy_s, time.process_time()
        try:
            outputs, summary = await body()
        except Exception as exc:
            self.dir.event(stage=name, kind="failed", error=str(exc))
            self.note("stage %s: failed after %.1fs: %s" % (name, time.perf_counter() - started, exc))
            raise
        wall = time.perf_counter() - started
        service = self.services.clock.busy_s - busy0
        timing = {
            "wall_s": round(wall, 3),
            "service_s": round(service, 3),
            # wall time during which no service call was in flight: what the controller adds to a round
            "overhead_s": round(max(wall - service, 0), 3),
            # CPU the controller itself spent (prompts, parsing, bookkeeping), much of it overlapped
            "controller_cpu_s": round(time.process_time() - cpu0, 3),
        }
        self.dir.complete(name, outputs, summary, timing)
        self.dir.event(stage=name, kind="completed", summary=summary, timing=timing)
        self.note("stage %s: done in %.1fs (services %.1fs): %s" % (name, wall, service, brief(summary)))
        return summary

    def note(self, message: str) -> None:
        if self.progress:
            note(message)

    def bar(self, total: int, desc: str) -> Progress:
        """A bar on a terminal; off one (Kubernetes Job logs), a plain line at start, every 30 s and at the end."""
        return Progress(desc, total, "sample", enabled=self.progress, on_update=SampleCounts(self.dir.root, desc))

    # -- the run -----------------------------------------------------------------------------
    async def execute(self) -> dict[str, Any]:
        resuming = self.dir.claim(dump_config(self.config))
        self.dir.event(stage="run", kind="resumed" if resuming else "started")
        try:
            return await self._algorithm()
        except Exception as exc:
            self.dir.event(stage="run", kind="failed", error=str(exc))
            raise

    async def _algorithm(self) -> dict[str, Any]:
        self._load_tasks()
        await self.stage("prepare", self._prepare)
        self.traces = read_json(self.dir.root / "prepare" / "traces.json")
        hard = await self.stage("hard", self._hard)
        train_ids = set(hard["selected"])
        train = [t for t in self.tasks["train"] if t.task_id in train_ids]
        await self.stage("eval/base", partial(self._evaluate, "eval/base", ""))
        adapter = ""
        for i in range(1, self.config.rounds + 1):
            name = "round-%d" % i
            await self.stage(name + "/sample", partial(self._sample_round, name, train, adapter))
            kept = await self.stage(name + "/filter", partial(self._filter_round, name, train))
            if kept["kept"] == 0:
                self.dir.event(stage=name, kind="empty", message="the filters kept no sample in %s" % name)
                if self.config.filters.on_empty == "stop":
                    raise RunFailedError("%s: the filters kept no sample; stopping (filters.on_empty)" % name)
                continue  # nothing to train on: the next round samples from the same model
            await self.stage(name + "/train", partial(self._train, name, adapter))
            await self.stage(name + "/activate", partial(self._activate, name))
            adapter = name
            await self.stage(name + "/eval", partial(self._evaluate, name + "/eval", name))
        await self.stage("select", self._select)
        from next_controller.report import write_report

        await self.stage("report", partial(write_report, self.dir.root))
        summary: dict[str, Any] = read_json(self.dir.root / "summary.json")
        self.dir.event(stage="run", kind="finished", best=summary["best"])
        return summary

    def _load_tasks(self) -> None:
        for task_set in self.config.data.sets():
            self.tasks[task_set.name] = load_task_set(task_set)

    # -- prepare: one trace per task ---------------------------------------------------------------
    async def _prepare(self) -> tuple[list[Path], dict[str, Any]]:
        from next_tasks.prompts import first_failing_trace

        unique = {t.task_id: t for tasks in self.tasks.values() for t in tasks}
        bar = self.bar(len(unique), "traces")

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

    # -- prompts -------------------------------------------------------------------------------
    def prompt(self, task: TaskRecord, with_trace: bool, shots: int) -> str:
        return render_prompt(
            task, self.traces.get(task.task_id), with_trace, shots, self.config.sampling.trace_format, self.tokenizer
        )

    def items(self, tasks: list[TaskRecord], with_trace: bool, shots: int) -> list[PromptItem]:
        tag = "trace" if with_trace else "no-trace"
        return [
            PromptItem(
                "%s|%s" % (t.task_id, tag), t, self.prompt(t, with_trace, shots), self.traces.get(t.task_id), with_trace
            )
            for t in tasks
        ]

    def params(self, n: int, temperature: float, seed: int) -> SamplingParams:
        s = self.config.sampling
        return SamplingParams(
            n=n,
            temperature=temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            seed=seed,
            stop=tuple(s.stop),
        )

    # -- sampling with verification as samples arrive --------------------------------------------
    async def sample_and_grade(
        self,
        path: Path,
        items: list[PromptItem],
        params: SamplingParams,
        adapter: str,
        for_training: bool,
        desc: str,
        backend: str = "",
    ) -> list[dict[str, Any]]:
        """Every (item, sample) once in ``path``: samples already logged are kept, the rest are drawn."""
        n = params.n or 1
        rows = read_jsonl(path)
        have = {(r["key"], r["sample_index"]) for r in rows}
        todo = [it for it in items if any((it.key, j) not in have for j in range(n))]
        missing = sum(1 for it in todo for j in range(n) if (it.key, j) not in have)
        if not todo:
            return rows
        bar = self.bar(missing, desc)
        out = AppendLog(path)
        queue: asyncio.Queue[Completion | None] = asyncio.Queue(maxsize=2 * self.config.services.tracer_concurrency)
        workers = self.config.services.tracer_concurrency

        async def produce() -> None:
            try:
                async for c in self.services.sample_stream([it.prompt for it in todo], params, adapter, backend):
                    if (todo[c.prompt_index].key, c.sample_index) not in have:
                        await queue.put(c)  # blocks when the tracer is behind: backpressure on the stream
            finally:
                for _ in range(workers):
                    await queue.put(None)

        async def grade() -> None:
            while (c := await queue.get()) is not None:
                item = todo[c.prompt_index]
                row = await grade_completion(
                    self.services, item.task, c.text, self.config.tracer_timeout_s, for_training
                )
                row.update(
                    key=item.key,
                    task_id=item.task.task_id,
                    with_trace=item.with_trace,
                    sample_index=c.sample_index,
                    text=c.text,
                    adapter=c.adapter,
                    seed=c.seed,
                    finish_reason=c.finish_reason,
                )
                out.append(row)
                rows.append(row)
                bar.update()

        try:
            await asyncio.gather(produce(), *(grade() for _ in range(workers)))
        finally:
            out.close()
            bar.close()
        return rows

    # -- hard problems (Algorithm 1, line 1) -------------------------------------------------------
    async def _hard(self) -> tuple[list[Path], dict[str, Any]]:
        hp, s = self.config.hard_problems, self.config.sampling
        train = self.tasks["train"]
        out = self.dir.root / "hard" / "selection.json"
        if not hp.enabled:
            write_json(out, {"enabled": False, "selected": [t.task_id for t in train]})
            return [out], {"enabled": False, "selected": [t.task_id for t in train], "candidates": len(train)}
        log_path = self.dir.root / "hard" / "samples.jsonl"
        rows = await self.sample_and_grade(
            log_path, self.items(train, True, s.shots), self.params(hp.samples, s.temperature, s.seed), "", True, "hard"
        )
        correct: dict[str, int] = {t.task_id: 0 for t in train}
        for r in rows:
            correct[r["task_id"]] += int(r["passed"])
        estimate = {tid: c / hp.samples for tid, c in correct.items()}
        selected = [tid for tid, p in estimate.items() if p < hp.threshold]
        write_json(out, {"enabled": True, "pass_at_1": estimate, "selected": selected, "threshold": hp.threshold})
        return [log_path, out], {"enabled": True, "selected": selected, "candidates": len(train)}

    # -- a round ---------------------------------------------------------------------------------
    async def _sample_round(
        self, name: str, train: list[TaskRecord], adapter: str
    ) -> tuple[list[Path], dict[str, Any]]:
        s = self.config.sampling
        shots = s.shots if not adapter else 0  # fine-tuned models are prompted 0-shot, as at test time
        path = self.dir.root / name / "samples.jsonl"
        seed = s.seed + 1000 * int(name.split("-")[1])
        rows = await self.sample_and_grade(
            path,
            self.items(train, True, shots),
            self.params(s.samples_per_problem, s.temperature, seed),
            adapter,
            True,
            name,
        )
        passed = sum(1 for r in rows if r["passed"])
        return [path], {"samples": len(rows), "passed": passed, "adapter": adapter}

    async def _filter_round(self, name: str, train: list[TaskRecord]) -> tuple[list[Path], dict[str, Any]]:
        by_id = {t.task_id: t for t in train}
        rows = sorted(
            read_jsonl(self.dir.root / name / "samples.jsonl"), key=lambda r: (r["task_id"], r["sample_index"])
        )
        samples = [
            Sample(
                r["task_id"],
                r["sample_index"],
                r["text"],
                r["rationale"],
                r["program"],
                r["passed"],
                self.traces.get(r["task_id"]),
            )
            for r in rows
        ]
        options = {
            "max_completion_chars": self.config.filters.max_completion_chars,
            "entry_points": {t.task_id: t.entry_point for t in train},
        }
        kept, drops = apply_filters(samples, self.config.filters.names, options, self.filters)
        examples = []
        for sample in kept:
            assert sample.program is not None
            prompt, completion = training_example(
                by_id[sample.task_id],
                sample.trace,
                PromptOptions(with_trace=True, shots=0),
                sample.rationale,
                sample.program,
                self.tokenizer,
            )
            examples.append(
                {
                    "prompt": prompt,
                    "completion": completion,
                    "task_id": sample.task_id,
                    "sample_index": sample.sample_index,
                }
            )
        data = self.dir.root / name / "train.jsonl"
        write_jsonl(data, examples)
        report = self.dir.root / name / "filters.json"
        summary = {
            "samples": len(samples),
            "kept": len(kept),
            "drops": drops,
            "tasks_kept": len({s.task_id for s in kept}),
        }
        write_json(report, summary)
        return [data, report], summary

    async def _train(self, name: str, previous: str) -> tuple[list[Path], dict[str, Any]]:
        from next_controller.train import training_config

        out = self.dir.root / name / "adapter"
        warm = str(self.dir.root / previous / "adapter") if previous and self.config.training.warm_start else ""
        if not (out / "next_training.json").exists():  # not published yet: start, or resume from checkpoints
            job_config = training_config(self.config, self.dir.root / name / "train.jsonl", out, warm)
            last: JobStatus | None = None
            bar = Progress("%s train" % name, unit="step", enabled=self.progress)
            async for job in self.services.train(job_config):
                last = job
                if job.progress.total_steps:
                    bar.set_total(job.progress.total_steps)
                if job.progress.step > bar.n:
                    bar.set_postfix(loss="%.4f" % job.progress.loss)
                    bar.advance_to(job.progress.step)
                    self.dir.event(
                        stage=name + "/train", kind="progress", step=job.progress.step, loss=job.progress.loss
                    )
            bar.close()
            if last is None or last.state is not JobState.SUCCEEDED:
                reason = last.reason if last else "no job"
                raise RunFailedError("%s: training failed: %s" % (name, reason))
        meta = read_json(out / "next_training.json")
        return [out], {"adapter": str(out), "metrics": meta["metrics"], "data": meta["data"]}

    async def _activate(self, name: str) -> tuple[list[Path], dict[str, Any]]:
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

    # -- evaluation ---------------------------------------------------------------------------------
    async def _evaluate(self, stage: str, adapter: str) -> tuple[list[Path], dict[str, Any]]:
        ev, s = self.config.evaluation, self.config.sampling
        shots = s.shots if not adapter else 0
        folder = self.dir.root / stage
        results: dict[str, Any] = {}
        outputs = []
        for set_name in ["dev", *self.config.data.test]:
            tasks = self.tasks[set_name]
            metrics: dict[str, float] = {}
            for with_trace in ev.with_trace:
                tag = "trace" if with_trace else "no-trace"
                items = self.items(tasks, with_trace, shots)
                path = folder / ("%s-%s.jsonl" % (set_name, tag))
                rows = await self.sample_and_grade(
                    path,
                    items,
                    self.params(ev.samples, ev.temperature, s.seed + 7),
                    adapter,
                    False,
                    "%s %s %s" % (stage, set_name, tag),
                )
                outputs.append(path)
                for k, est in scores(tally(rows, [t.task_id for t in tasks]), ev.ks).items():
                    metrics["pass@%d/%s" % (k, tag)] = est.value
                if ev.greedy:
                    gpath = folder / ("%s-%s-greedy.jsonl" % (set_name, tag))
                    grows = await self.sample_and_grade(
                        gpath, items, self.params(1, 0.0, 0), adapter, False, "%s %s %s greedy" % (stage, set_name, tag)
                    )
                    outputs.append(gpath)
                    metrics["greedy/%s" % tag] = greedy_pass_at_1({r["task_id"]: bool(r["passed"]) for r in grows})
                if with_trace and ev.proxy.enabled:
                    metrics.update(await self._proxy(folder, set_name, tasks, rows))
                    outputs.append(folder / ("%s-proxy.jsonl" % set_name))
            results[set_name] = metrics
        out = folder / "metrics.json"
        write_json(out, results)
        return [*outputs, out], results

    async def _proxy(
        self, folder: Path, set_name: str, tasks: list[TaskRecord], rows: list[dict[str, Any]]
    ) -> dict[str, float]:
        """A second model writes fixes from each rationale; its pass@k says how much the rationales help."""
        proxy = self.config.evaluation.proxy
        by_id = {t.task_id: t for t in tasks}
        firsts = {r["task_id"]: r for r in sorted(rows, key=lambda r: r["sample_index"]) if r["sample_index"] == 0}
        items = [
            PromptItem("%s|proxy" % tid, by_id[tid], self._proxy_input(by_id[tid], r["rationale"]), None, True)
            for tid, r in sorted(firsts.items())
        ]
        prows = await self.sample_and_grade(
            folder / ("%s-proxy.jsonl" % set_name),
            items,
            self.params(proxy.samples, self.config.evaluation.temperature, 11),
            "",
            False,
            "%s proxy" % set_name,
            backend=proxy.backend,
        )
        counts = tally(prows)
        return {"proxy-pass@1": mean_pass_at_k(counts, 1, bootstrap=0).value} if counts else {}

    def _proxy_input(self, task: TaskRecord, rationale: str) -> str:
        return proxy_input(task, rationale, self.tokenizer)

    # -- selection (Algorithm 1, line 10) -------------------------------------------------------------
    async def _select(self) -> tuple[list[Path], dict[str, Any]]:
        metric = self.config.evaluation.metric
        stages = self.dir.stages()
        table = []
        for name in ["base", *("round-%d" % i for i in range(1, self.config.rounds + 1))]:
            ev = stages.get("eval/base" if name == "base" else name + "/eval")
            if ev is None:
                continue
            row: dict[str, Any] = {"model": name, "eval": ev["summary"]}
            if name != "base":
                row["filter"] = stages.get(name + "/filter", {}).get("summary", {})
                row["train"] = stages.get(name + "/train", {}).get("summary", {}).get("metrics", {})
            table.append(row)
        available = [r for r in table if metric in r["eval"].get("dev", {})]
        if not available:
            raise InvalidArgumentError(
                "evaluation.metric %r was not computed; computed: %s"
                % (metric, sorted(table[0]["eval"].get("dev", {})))
            )
        best = max(available, key=lambda r: r["eval"]["dev"][metric])  # ties: the earliest
        timings = {name: entry.get("timing", {}) for name, entry in stages.items()}
        # the change of every model against the base, paired over tasks (the report shows them)
        comparisons = [c.to_json() for c in compare(self.dir.root, [r["model"] for r in table])]
        summary = {
            "best": best["model"],
            "metric": metric,
            "value": best["eval"]["dev"][metric],
            "rounds": table,
            "comparisons": comparisons,
            "timings": timings,
            "stage_order": list(timings),  # summary.json is written with sorted keys
        }
        out = self.dir.root / "summary.json"
        write_json(out, summary)
        return [out], {"best": best["model"], "metric": metric, "value": summary["value"]}
