"""HeFix+ from shared/data: 164 tasks, every buggy program fails, every reference passes grading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from next_tasks.hefix import build_hefix_plus, summarize
from next_tasks.record import load_tasks, save_tasks
from next_tasks.sources import SourceError, load_humaneval_local
from next_tracer.engine import TracerEngine
from next_tracer.inprocess import InProcessTracerClient
from tests.conftest import DATA

pytestmark = pytest.mark.slow


async def test_build_hefix_plus(engine: TracerEngine, tmp_path: Path) -> None:
    tasks, report = await build_hefix_plus(load_humaneval_local(DATA), InProcessTracerClient(engine=engine))
    assert report.dropped == {}
    assert report.tasks == len(tasks) == 164
    assert report.inputs == 1_570 + 122_683  # base + plus inputs of HumanEval+ v0.1.10 (data README)
    by_id = {t.task_id: t for t in tasks}
    assert by_id["HumanEval/32"].grading_io is not None and by_id["HumanEval/32"].grading_io.oracle == "find_zero"
    assert sum(t.grading_io.atol != 0 for t in tasks if t.grading_io) == 3  # data README: atol != 0 in 3 tasks
    path = tmp_path / "hefix.jsonl.gz"
    save_tasks(path, tasks)
    assert summarize(load_tasks(path))["grading_inputs"] == report.inputs


def test_stats_cli_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"humaneval/HumanEval\.jsonl\.gz: file not found"):
        load_humaneval_local(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "next_controller",
            "data",
            "build-hefix-plus",
            "--source",
            str(tmp_path),
            "--out",
            str(tmp_path / "x.jsonl"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "file not found" in out.stderr
