"""``next``: exit 2 for usage and input errors, 0 for inspections that could report, and
``next data build-*`` progress as plain lines off a terminal. (A run that fails with exit 1:
tests/controller/test_run.py.)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from next_tasks.record import save_tasks
from tests.tasks.test_prompts import TASK


def _next(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "next_controller", *args], capture_output=True, text=True, timeout=300)


def test_usage_and_input_errors_exit_2_and_inspections_exit_0(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    save_tasks(tasks, [TASK])
    stats = _next("data", "stats", str(tasks), "--json", "--log-level", "debug")
    assert stats.returncode == 0 and json.loads(stats.stdout)["tasks"] == 1, stats.stderr
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("rounds: [1\n")
    for args in (
        ("status", str(tmp_path / "nowhere")),  # not a run directory
        ("report", str(tmp_path)),  # no summary yet
        ("run", str(tmp_path / "missing.yaml")),
        ("run", str(bad_yaml)),
        ("data", "stats", str(tmp_path / "missing.jsonl")),
        ("data", "show", str(tasks), "nope", "--no-trace"),
        ("status", str(tmp_path), "--log-level", "LOUD"),
        ("frobnicate",),
    ):
        out = _next(*args)
        assert out.returncode == 2 and out.stderr and "Traceback" not in out.stderr, (args, out.stderr[-2000:])


MBPP = [  # two problems: task 1 is in MBPP's train split, task 11 in its test (our dev) split
    {
        "task_id": 1,
        "text": "Add two numbers.",
        "code": "def add(a, b):\n    return a + b\n",
        "test_list": ["assert add(1, 2) == 3", "assert add(0, 5) == 5"],
        "test_setup_code": "",
    },
    {
        "task_id": 11,
        "text": "Double a number.",
        "code": "def double(x):\n    return 2 * x\n",
        "test_list": ["assert double(2) == 4", "assert double(0) == 0"],
        "test_setup_code": "",
    },
]


def test_a_data_build_off_a_terminal_prints_plain_progress_lines(tmp_path: Path) -> None:
    (tmp_path / "mbpp").mkdir()
    (tmp_path / "mbpp" / "mbpp.jsonl").write_text("".join(json.dumps(p) + "\n" for p in MBPP))
    out = tmp_path / "out"
    built = _next("data", "build-mbpp-r", "--source", str(tmp_path), "--out", str(out), "--per-problem", "1", "--json")
    assert built.returncode == 0, built.stderr[-3000:]
    assert json.loads(built.stdout)["tasks"] == 2  # stdout holds the result alone
    assert "\r" not in built.stderr
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.search("^%smbpp-r: started, 2 problems$" % stamp, built.stderr, re.M), built.stderr
    assert re.search(r"^%smbpp-r: done in [\d.]+s, 2/2 problems \(100%%\)$" % stamp, built.stderr, re.M)
