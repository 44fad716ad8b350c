"""Evaluation of one model (pass@k with and without traces, greedy, the proxy rationale
evaluation) and the selection of the best model on dev (Algorithm 1, line 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError
from next_controller.comparison import compare, tally
from next_controller.config import RunConfig
from next_controller.pipeline import Pipeline, PromptItem, sampling_params
from next_controller.rows import SampleRow
from next_controller.rundir import RunDir, write_json
from next_tasks.metrics import greedy_pass_at_1, mean_pass_at_k, scores
from next_tasks.prompts import to_model_input
from next_tasks.record import TaskRecord


def proxy_prompt(task: TaskRecord, rationale: str) -> str:
    """The paper's rationale evaluation: fix the bug from the problem, the program and the rationale alone."""
    return (
        "Problem:\n%s\n\nBuggy program:\n```python\n%s```\n\nAn explanation of the bug:\n%s\n\n"
        "Write the whole fixed program in one ```python block.\n"
        % (task.problem.strip(), task.buggy_program, rationale.strip())
    )


def proxy_input(task: TaskRecord, rationale: str, tokenizer: Any) -> str:
    return to_model_input([{"role": "user", "content": proxy_prompt(task, rationale)}], tokenizer)


class Evaluation:
    def __init__(self, config: RunConfig, pipeline: Pipeline, tasks: dict[str, list[TaskRecord]], root: Path) -> None:
        self.config = config
        self.pipeline = pipeline
        self.tasks = tasks
        self.root = root

    async def evaluate(self, stage: str, adapter: str) -> tuple[list[Path], dict[str, Any]]:
        """``adapter`` ("" for the base model) on dev and every test set: metrics.json and the sample logs."""
        ev, s = self.config.evaluation, self.config.sampling
        shots = s.shots if not adapter else 0
        folder = self.root / stage
        results: dict[str, Any] = {}
        outputs = []
        for set_name in ["dev", *self.config.data.test]:
            tasks = self.tasks[set_name]
            metrics: dict[str, float] = {}
            for with_trace in ev.with_trace:
                tag = "trace" if with_trace else "no-trace"
                items = self.pipeline.items(tasks, with_trace, shots)
                path = folder / ("%s-%s.jsonl" % (set_name, tag))
                rows = await self.pipeline.sample_and_grade(
                    path,
                    items,
                    sampling_params(self.config, ev.samples, ev.temperature, s.seed + 7),
                    adapter,
                    False,
                    "%s %s %s" % (stage, set_name, tag),
                )
                outputs.append(path)
                for k, est in scores(tally(rows, [t.task_id for t in tasks]), ev.ks).items():
                    metrics["pass@%d/%s" % (k, tag)] = est.value
                if ev.greedy:
                    gpath = folder / ("%s-%s-greedy.jsonl" % (set_name, tag))
                    grows = await self.pipeline.sample_and_grade(
                        gpath,
                        items,
                        sampling_params(self.config, 1, 0.0, 0),
                        adapter,
                        False,
                        "%s %s %s greedy" % (stage, set_name, tag),
                    )
                    outputs.append(gpath)
                    metrics["greedy/%s" % tag] = greedy_pass_at_1({r.task_id: r.passed for r in grows})
                if with_trace and ev.proxy.enabled:
                    metrics.update(await self._proxy(folder, set_name, tasks, rows))
                    outputs.append(folder / ("%s-proxy.jsonl" % set_name))
            results[set_name] = metrics
        out = folder / "metrics.json"
        write_json(out, results)
        return [*outputs, out], results

    async def _proxy(
        self, folder: Path, set_name: str, tasks: list[TaskRecord], rows: list[SampleRow]
    ) -> dict[str, float]:
        """A second model writes fixes from each rationale; its pass@k says how much the rationales help."""
        proxy = self.config.evaluation.proxy
        by_id = {t.task_id: t for t in tasks}
        firsts = {r.task_id: r for r in rows if r.sample_index == 0}
        items = [
            PromptItem(
                "%s|proxy" % tid, by_id[tid], proxy_input(by_id[tid], r.rationale, self.pipeline.tokenizer), None, True
            )
            for tid, r in sorted(firsts.items())
        ]
        prows = await self.pipeline.sample_and_grade(
            folder / ("%s-proxy.jsonl" % set_name),
            items,
            sampling_params(self.config, proxy.samples, self.config.evaluation.temperature, 11),
            "",
            False,
            "%s proxy" % set_name,
            backend=proxy.backend,
        )
        counts = tally(prows)
        return {"proxy-pass@1": mean_pass_at_k(counts, 1, bootstrap=0).value} if counts else {}


async def select(run_dir: RunDir, config: RunConfig) -> tuple[list[Path], dict[str, Any]]:
    """The best model on the dev metric (ties: the earliest), with every model's figures and timings."""
    metric = config.evaluation.metric
    stages = run_dir.stages()
    table = []
    for name in ["base", *("round-%d" % i for i in range(1, config.rounds + 1))]:
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
            "evaluation.metric %r was not computed; computed: %s" % (metric, sorted(table[0]["eval"].get("dev", {})))
        )
    best = max(available, key=lambda r: r["eval"]["dev"][metric])
    timings = {name: entry.get("timing", {}) for name, entry in stages.items()}
    summary = {
        "best": best["model"],
        "metric": metric,
        "value": best["eval"]["dev"][metric],
        "rounds": table,
        # the change of every model against the base, paired over tasks (the report shows them)
        "comparisons": [c.to_json() for c in compare(run_dir.root, [r["model"] for r in table])],
        "timings": timings,
        "stage_order": list(timings),  # summary.json is written with sorted keys
    }
    out = run_dir.root / "summary.json"
    write_json(out, summary)
    return [out], {"best": best["model"], "metric": metric, "value": summary["value"]}
