"""``replay``: serves recorded completions, for reproducible runs and tests of what comes after.

The file is JSONL, one object per completion: ``prompt``, ``sample_index``, ``text`` and
optionally ``adapter``, ``finish_reason``, ``prompt_tokens``, ``completion_tokens``. A request
for a (prompt, adapter, sample) that was not recorded is NOT_FOUND, never a made-up answer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError, NotFoundError
from next_common.plugins import hookimpl
from next_common.plugins.hookspecs import RegisterFn
from next_sampler.generation import Generation, SampleJob
from nextapi.sampler.types import SamplingParams


def _key(prompt: str, adapter: str, sample_index: int) -> tuple[str, str, int]:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest(), adapter, sample_index


class ReplayBackend:
    description = "recorded completions from a JSONL file (reproducible runs, tests)"

    def __init__(self, path: str | Path) -> None:
        if not str(path):
            raise InvalidArgumentError("the replay backend needs a file of recorded completions: --replay-file FILE")
        self.path = Path(path)
        self.records: dict[tuple[str, str, int], Generation] = {}
        self._adapters: set[str] = set()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InvalidArgumentError("replay file %s cannot be read: %s" % (self.path, exc.strerror)) from None
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidArgumentError("%s:%d: not valid JSON (%s)" % (self.path, number, exc.msg)) from None
                self._add(record, number)

    def _add(self, record: Any, number: int) -> None:
        where = "%s:%d" % (self.path, number)
        if not isinstance(record, dict):
            raise InvalidArgumentError("%s: not a JSON object" % where)
        for name, kind in (("prompt", str), ("text", str), ("sample_index", int)):
            if not isinstance(record.get(name), kind):
                raise InvalidArgumentError("%s: field %r must be a %s" % (where, name, kind.__name__))
        adapter = str(record.get("adapter", ""))
        self._adapters.add(adapter)
        text = record["text"]
        self.records[_key(record["prompt"], adapter, record["sample_index"])] = Generation(
            text=text,
            prompt_tokens=int(record.get("prompt_tokens", 0)),
            completion_tokens=int(record.get("completion_tokens", len(text.split()))),
            finish_reason=str(record.get("finish_reason", "stop")),
        )

    def adapters(self) -> list[str]:
        return sorted(a for a in self._adapters if a)

    async def generate(self, job: SampleJob, params: SamplingParams, adapter: str) -> Generation:
        found = self.records.get(_key(job.prompt, adapter, job.sample_index))
        if found is None:
            raise NotFoundError(
                "no recorded completion for prompt #%d, sample %d, adapter %r in %s"
                % (job.prompt_index, job.sample_index, adapter, self.path)
            )
        return found


def record_line(prompt: str, completion: Any) -> str:
    """One replay-file line for a completion (any object with the Completion fields)."""
    return json.dumps(
        {
            "prompt": prompt,
            "sample_index": completion.sample_index,
            "text": completion.text,
            "adapter": completion.adapter,
            "finish_reason": completion.finish_reason,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
    )


@hookimpl
def next_register_sampler_backends(register: RegisterFn) -> None:
    register("replay", lambda options: ReplayBackend(options["replay_file"]))
