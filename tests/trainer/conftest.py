"""A tiny causal LM built in the test (SmolLM2's tokenizer, random weights) and a small data set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.tiny_models import smollm2_tokenizer, tiny_llama

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

PAIRS = [
    ("def add(a, b):\n", "    return a + b\n"),
    ("def sub(a, b):\n", "    return a - b\n"),
    ("def mul(a, b):\n", "    return a * b\n"),
    ("def neg(a):\n", "    return -a\n"),
    ("def first(xs):\n", "    return xs[0]\n"),
    ("def last(xs):\n", "    return xs[-1]\n"),
    ("def size(xs):\n", "    return len(xs)\n"),
    ("def is_even(n):\n", "    return n % 2 == 0\n"),
]


def build_tiny_model(path: Path) -> Path:
    tokenizer = smollm2_tokenizer()
    tiny_llama(tokenizer, tie_word_embeddings=True).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def write_data(path: Path, repeat: int = 2) -> Path:
    lines = [json.dumps({"prompt": p, "completion": c}) for _ in range(repeat) for p, c in PAIRS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_data(tmp_path / "train.jsonl")


def base_config(model: Path, data: Path, out: Path, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_model": str(model),
        "data_path": str(data),
        "output_dir": str(out),
        "seed": 7,
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "optim": {"learning_rate": 5e-3, "max_steps": 12, "batch_size": 4, "warmup_ratio": 0.0},
        "max_length": 64,
        "save_steps": 4,
    }
    config.update(extra)
    return config


def processes_of(work: Path) -> list[int]:
    """Live processes whose command line names this job's config (the worker, torchrun)."""
    marker = str(work / "config.json").encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found
