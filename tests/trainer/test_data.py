"""Training data and settings: line-numbered errors, completion-only labels, overlong decisions counted."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from next_common.errors import InvalidArgumentError
from next_trainer.data import IGNORE_INDEX, read_examples, tokenize
from nextapi.trainer.config import load_config, parse_config
from tests.tiny_models import smollm2_tokenizer


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    return smollm2_tokenizer()


def test_malformed_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "a", "completion": \n')
    with pytest.raises(InvalidArgumentError, match=r"d\.jsonl:3: not valid JSON"):
        read_examples(path)
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    with pytest.raises(InvalidArgumentError, match=r'd\.jsonl:2: expected an object with "prompt" and "completion"'):
        read_examples(path)
    path.write_text('{"prompt": [{"role": "user"}], "completion": "b"}\n')
    with pytest.raises(InvalidArgumentError, match=r"d\.jsonl:1: prompt: expected a string or a list"):
        read_examples(path)
    path.write_text("\n\n")
    with pytest.raises(InvalidArgumentError, match="no examples"):
        read_examples(path)
    with pytest.raises(InvalidArgumentError, match="no such file"):
        read_examples(tmp_path / "missing.jsonl")


def test_gzip_and_chat_messages(tmp_path: Path, tokenizer) -> None:  # type: ignore[no-untyped-def]
    record = {"prompt": [{"role": "user", "content": "fix it"}], "completion": [{"role": "assistant", "content": "ok"}]}
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps(record) + "\n")
    (example,) = read_examples(path)
    features, report = tokenize([example], tokenizer, 256, "drop")
    prompt = tokenizer.apply_chat_template(record["prompt"], tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>assistant" in prompt
    assert features[0]["input_ids"][: len(tokenizer(prompt)["input_ids"])] == tokenizer(prompt)["input_ids"]
    assert report.kept == 1


def test_loss_covers_the_completion_and_eos_only(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from next_trainer.data import Example

    features, report = tokenize([Example("def f(x):\n", "    return x\n", 1)], tokenizer, 64, "drop")
    (f,) = features
    prompt_len = len(tokenizer("def f(x):\n")["input_ids"])
    assert f["labels"][:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert f["labels"][prompt_len:] == f["input_ids"][prompt_len:]
    assert f["input_ids"][-1] == tokenizer.eos_token_id
    assert report.completion_tokens == len(f["input_ids"]) - prompt_len


def test_overlong_examples_are_dropped_or_truncated_and_counted(tokenizer) -> None:  # type: ignore[no-untyped-def]
    from next_trainer.data import Example

    long_prompt = "x = 1\n" * 40
    examples = [Example(long_prompt, "    return x\n", 1), Example("a", "y = 2\n" * 40, 2), Example("a", "b", 3)]
    features, report = tokenize(examples, tokenizer, 32, "drop")
    assert (report.kept, report.dropped, report.truncated) == (1, 2, 0)
    features, report = tokenize(examples, tokenizer, 32, "truncate")
    # the long prompt is cut from the left; a completion that cannot fit is never cut
    assert (report.kept, report.dropped, report.truncated) == (2, 1, 1)
    assert len(features[0]["input_ids"]) == 32 and features[0]["input_ids"][-1] == tokenizer.eos_token_id


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    base = {"base_model": "m", "data_path": "d.jsonl", "output_dir": "out"}
    with pytest.raises(InvalidArgumentError, match=r"optim\.learning_rate: Input should be greater than 0"):
        parse_config({**base, "optim": {"learning_rate": -1}})
    with pytest.raises(InvalidArgumentError, match=r"lora\.rank: Extra inputs are not permitted"):
        parse_config({**base, "lora": {"rank": 8}})
    with pytest.raises(InvalidArgumentError, match=r"fsdp shards over processes"):
        parse_config({**base, "fsdp": True})
    path = tmp_path / "c.yaml"
    path.write_text("base_model: m\ndata_path: d.jsonl\noutput_dir: out\n")
    config = load_config(path, ["optim.max_steps=5", "lora.r=4"])
    assert config.optim.max_steps == 5 and config.lora.r == 4 and config.lora.target_modules == "all-linear"
    path.write_text("- a list\n")
    with pytest.raises(InvalidArgumentError, match="expected a mapping"):
        load_config(path)
