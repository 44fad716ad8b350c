"""``next-trainer train``: 0 for a job that succeeded, 1 for one that ran and failed, 2 for bad input;
off a terminal its progress is plain lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.trainer.conftest import base_config, write_data


def train(config: dict[str, Any] | None, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if config is not None:
        path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "next_trainer", "train", "--config", str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_exit_codes_and_plain_progress(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = write_data(tmp_path / "train.jsonl")
    config = base_config(tiny_model_dir, data, tmp_path / "ok", optim={"max_steps": 2, "batch_size": 4})
    done = train(config, tmp_path / "ok.yaml", "--log-level", "INFO")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "adapter: %s" % (tmp_path / "ok") in done.stdout
    assert "\r" not in done.stderr  # not a terminal: lines, not a bar
    assert "training: started" in done.stderr and "training: done in" in done.stderr
    assert "2/2 steps (100%)" in done.stderr

    # It starts (the data reads fine) and fails in the job: every example is longer than max_length.
    long = tmp_path / "long.jsonl"
    long.write_text(json.dumps({"prompt": "def f():\n", "completion": "    return 1\n" * 40}) + "\n")
    failing = base_config(tiny_model_dir, long, tmp_path / "failed", max_length=8)
    failed = train(failing, tmp_path / "failed.yaml")
    assert failed.returncode == 1, failed.stderr[-3000:]
    assert " failed: all 1 examples are longer than max_length=8 tokens" in failed.stderr

    for out in (
        train(None, tmp_path / "missing.yaml"),
        train({**config, "output_dir": str(tmp_path / "x"), "optim": {"epochz": 1}}, tmp_path / "typo.yaml"),
        train(config, tmp_path / "again.yaml", "--set", "nonsense"),
        train(config, tmp_path / "level.yaml", "--log-level", "LOUD"),
    ):
        assert out.returncode == 2 and out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]
