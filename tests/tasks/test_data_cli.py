"""``next data``: show prints exactly the rendered prompt; stats; clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from next_tasks.prompts import PromptOptions, render_messages, render_text
from next_tasks.record import save_tasks
from tests.tasks.test_prompts import TASK


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "next_controller", "data", *args], capture_output=True, text=True)


def test_show_prints_the_prompt_and_stats_counts(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    save_tasks(path, [TASK])
    shown = run("show", str(path), TASK.task_id, "--no-trace", "--shots", "3")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == render_text(render_messages(TASK, None, PromptOptions(with_trace=False, shots=3)))
    traced = run("show", str(path), TASK.task_id)
    assert "# (7) __exception__ = AssertionError()" in traced.stdout
    stats = json.loads(run("stats", str(path), "--json").stdout)
    assert stats["tasks"] == 1 and stats["shown_tests"] == 2


def test_errors_name_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"task_id": 1}\n')
    bad = run("stats", str(path))
    assert bad.returncode == 2 and "tasks.jsonl:1: field 'task_id' must be a non-empty string" in bad.stderr
    save_tasks(path, [TASK])
    missing = run("show", str(path), "nope")
    assert missing.returncode == 2 and "no task 'nope'" in missing.stderr
    unknown = run("build-mbpp-r", "--bugs", "magic", "--out", str(tmp_path / "o"), "--source", str(tmp_path))
    assert unknown.returncode == 2 and "unknown bug source 'magic'; available: mutation, sampled" in unknown.stderr
