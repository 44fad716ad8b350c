"""Training data: prompt/completion JSONL read with line-numbered errors, tokenized for completion-only loss.

The prompt is tokenized exactly as the sampler tokenizes what it sends to the model, and the
completion is appended token for token, so the model is trained on the very inputs it samples
from. Prompt tokens get the label -100: the loss covers the completion (rationale + fix) and
the end-of-sequence token only.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from next_common.errors import InvalidArgumentError
from nextapi.trainer.types import DataReport

IGNORE_INDEX = -100

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Example:
    prompt: str | Messages
    completion: str | Messages
    line: int


def _messages(value: Any, where: str) -> str | Messages:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise InvalidArgumentError("%s: expected a string or a list of {role, content} messages" % where)


def read_examples(path: str | Path) -> list[Example]:
    """Every example of a .jsonl or .jsonl.gz file; any malformed line is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError("training data %s: no such file" % path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    examples: list[Example] = []
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = "%s:%d" % (path, number)
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidArgumentError("%s: not valid JSON (%s)" % (where, exc.msg)) from None
                if not isinstance(record, dict) or "prompt" not in record or "completion" not in record:
                    raise InvalidArgumentError('%s: expected an object with "prompt" and "completion"' % where)
                prompt = _messages(record["prompt"], where + ": prompt")
                completion = _messages(record["completion"], where + ": completion")
                if not completion:
                    raise InvalidArgumentError("%s: empty completion" % where)
                examples.append(Example(prompt, completion, number))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise InvalidArgumentError("training data %s: unreadable (%s)" % (path, exc)) from None
    if not examples:
        raise InvalidArgumentError("training data %s: no examples (the file is empty)" % path)
    return examples


class Tokenizer(Protocol):
    eos_token_id: int | None
    chat_template: Any

    def __call__(self, text: str, add_special_tokens: bool = True) -> Any: ...

    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> Any: ...


def render(example: Example, tokenizer: Tokenizer) -> tuple[str, str]:
    """Text of the prompt (chat template applied to messages) and of the completion."""
    prompt = example.prompt
    if not isinstance(prompt, str):
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidArgumentError(
                "line %d: the prompt is chat messages but the tokenizer has no chat template" % example.line
            )
        prompt = str(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
    completion = example.completion
    if not isinstance(completion, str):
        completion = "".join(m["content"] for m in completion if m["role"] == "assistant")
    return prompt, completion


def tokenize(
    examples: list[Example], tokenizer: Tokenizer, max_length: int, overlong: Literal["drop", "truncate"]
) -> tuple[list[dict[str, list[int]]], DataReport]:
    """Features for the Trainer, and counts of what was kept, truncated and dropped.

    ``truncate`` cuts the prompt from the left so the completion stays whole; an example whose
    completion alone does not fit is dropped either way (a cut-off fix would teach wrong code).
    """
    report = DataReport(examples=len(examples))
    features = []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for example in examples:
        prompt_text, completion_text = render(example, tokenizer)
        prompt = list(tokenizer(prompt_text)["input_ids"])
        completion = list(tokenizer(completion_text, add_special_tokens=False)["input_ids"]) + eos
        if len(prompt) + len(completion) > max_length:
            room = max_length - len(completion)
            if overlong == "drop" or room < 1:
                report.dropped += 1
                continue
            prompt = prompt[-room:]
            report.truncated += 1
        features.append(
            {
                "input_ids": prompt + completion,
                "attention_mask": [1] * (len(prompt) + len(completion)),
                "labels": [IGNORE_INDEX] * len(prompt) + completion,
            }
        )
        report.kept += 1
        report.tokens += len(prompt) + len(completion)
        report.completion_tokens += len(completion)
    return features, report
