"""The controller's progress metrics from a real run (embedded services, replay sampler, real
tracer): served on CONTROLLER_METRICS_PORT while ``app.run`` executes, as for a Kubernetes Job,
and rebuilt from the run's events by a fresh process, as after a restarted pod."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.controller.conftest import make_run

pytest.importorskip("torch")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str, run: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample labelled with this run, keyed by name and its other labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("run") == str(run):
                out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "run")))] = s.value
    return out


def _check(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], started: float) -> None:
    assert metrics[("next_controller_run_state", (("next_controller_run_state", "failed"),))] == 1
    assert metrics[("next_controller_run_state", (("next_controller_run_state", "running"),))] == 0
    assert metrics[("next_controller_rounds", ())] == 1 and metrics[("next_controller_round", ())] == 1
    # the latest stage event, and only that one: the filter stage completed (then the round was empty)
    info = {labels: v for (name, labels), v in metrics.items() if name == "next_controller_stage_info"}
    assert info == {(("stage", "round-1/filter"), ("state", "completed")): 1}
    assert metrics[("next_controller_stages_completed", ())] == 5  # prepare, hard (off), eval/base, sample, filter
    assert time.time() >= metrics[("next_controller_last_stage_completion_timestamp_seconds", ())] >= started
    walls = {dict(labels)["stage"] for (name, labels) in metrics if name == "next_controller_stage_wall_seconds"}
    assert walls == {"prepare", "hard", "eval/base", "round-1/sample", "round-1/filter"}


def test_a_run_serves_its_progress_and_a_restart_rebuilds_it(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from next_controller import app
    from next_controller.config import parse_run_config
    from next_controller.settings import ControllerSettings
    from next_controller.stages import RunFailedError

    config_path = make_run(tmp_path, tiny_model, rounds=1)
    raw = yaml.safe_load(config_path.read_text())
    raw["filters"] = {"names": ["rationale-cites-trace"], "on_empty": "stop"}  # ends after round-1/filter
    raw["hard_problems"] = {"enabled": False}
    config = parse_run_config(raw, "test")
    run = config.path.absolute()
    port = _free_port()
    monkeypatch.setenv("CONTROLLER_METRICS_PORT", str(port))
    assert ControllerSettings().metrics_port == port

    started = time.time()
    with pytest.raises(RunFailedError, match="the filters kept no sample"):
        asyncio.run(app.run(config, progress=False))  # quiet, as under `next serve`: the metrics still move

    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as resp:
        served = _samples(resp.read().decode(), run)
    _check(served, started)
    # the sampling batches: done out of expected, as the progress lines count them (16 = 4 tasks x 4)
    assert served[("next_controller_samples_done", (("batch", "round-1"),))] == 16
    assert served[("next_controller_samples_expected", (("batch", "round-1"),))] == 16
    assert served[("next_controller_samples_done", (("batch", "eval/base dev trace"),))] > 0

    # a fresh process (a restarted pod) rebuilds the same picture from events.jsonl alone
    code = (
        "import sys; from pathlib import Path; from prometheus_client import generate_latest;"
        "from next_controller.progress_metrics import replay; replay(Path(sys.argv[1]));"
        "sys.stdout.write(generate_latest().decode())"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rebuilt = _samples(out.stdout, run)
    _check(rebuilt, started)
    assert {k: v for k, v in rebuilt.items() if "samples" not in k[0]} == {
        k: v for k, v in served.items() if "samples" not in k[0]
    }
