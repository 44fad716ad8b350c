"""Sampling with verification as samples arrive: prompts out to the sampler, each completion
parsed and tested by the tracer while the next ones are drawn, every graded sample appended to
its log at once, so a killed stage resumes by drawing only what is missing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from next_controller.config import RunConfig
from next_controller.grading import grade_completion
from next_controller.rows import SampleRow, read_rows
from next_controller.rundir import AppendLog
from next_controller.services import Services
from next_controller.stages import Stages
from next_tasks.prompts import PromptOptions, render_messages, to_model_input
from next_tasks.record import TaskRecord
from nextapi.sampler.types import Completion, SamplingParams


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


def sampling_params(config: RunConfig, n: int, temperature: float, seed: int) -> SamplingParams:
    """The run's sampling settings (top-p, length, stop strings) with this request's n, temperature and seed."""
    s = config.sampling
    return SamplingParams(
        n=n, temperature=temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=seed, stop=tuple(s.stop)
    )


class Pipeline:
    def __init__(self, config: RunConfig, services: Services, tokenizer: Any, stages: Stages) -> None:
        self.config = config
        self.services = services
        self.tokenizer = tokenizer
        self.stages = stages
        self.traces: dict[str, str | None] = {}  # the prepare stage's, by task id

    def items(self, tasks: list[TaskRecord], with_trace: bool, shots: int) -> list[PromptItem]:
        tag = "trace" if with_trace else "no-trace"
        s = self.config.sampling
        return [
            PromptItem(
                "%s|%s" % (t.task_id, tag),
                t,
                render_prompt(t, self.traces.get(t.task_id), with_trace, shots, s.trace_format, self.tokenizer),
                self.traces.get(t.task_id),
                with_trace,
            )
            for t in tasks
        ]

    async def sample_and_grade(
        self,
        path: Path,
        items: list[PromptItem],
        params: SamplingParams,
        adapter: str,
        for_training: bool,
        desc: str,
        backend: str = "",
    ) -> list[SampleRow]:
        """Every (item, sample) once in ``path``: samples already logged are kept, the rest are drawn."""
        n = params.n or 1
        rows = read_rows(path)
        have = {(r.key, r.sample_index) for r in rows}
        todo = [it for it in items if any((it.key, j) not in have for j in range(n))]
        missing = sum(1 for it in todo for j in range(n) if (it.key, j) not in have)
        if not todo:
            return rows
        bar = self.stages.bar(missing, desc)
        out = AppendLog(path)
        workers = self.config.services.tracer_concurrency
        queue: asyncio.Queue[Completion | None] = asyncio.Queue(maxsize=2 * workers)

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
                g = await grade_completion(self.services, item.task, c.text, self.config.tracer_timeout_s, for_training)
                row = SampleRow(
                    key=item.key,
                    task_id=item.task.task_id,
                    sample_index=c.sample_index,
                    with_trace=item.with_trace,
                    text=c.text,
                    rationale=g.rationale,
                    program=g.program,
                    parse=g.parse,
                    passed=g.passed,
                    why=g.why,
                    adapter=c.adapter,
                    seed=c.seed,
                    finish_reason=c.finish_reason,
                )
                out.append(row.to_json())
                rows.append(row)
                bar.update()

        try:
            await asyncio.gather(produce(), *(grade() for _ in range(workers)))
        finally:
            out.close()
            bar.close()
        return rows
