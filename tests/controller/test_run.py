"""Whole runs through real services on loopback: replay sampler, real tracer, real trainer (tiny model)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.controller.conftest import make_run

pytest.importorskip("torch")

STAGES = [
    "prepare", "hard", "eval/base",
    "round-1/sample", "round-1/filter", "round-1/train", "round-1/activate", "round-1/eval",
    "round-2/sample", "round-2/filter", "round-2/train", "round-2/activate", "round-2/eval",
    "select", "report",
]  # fmt: skip


def _next(*args: str) -> list[str]:
    return [sys.executable, "-m", "next_controller", *args]


def _results(run: Path) -> dict[str, Any]:
    """What must not depend on interruptions: metrics, selections, training data, adapters."""
    from safetensors.torch import load_file

    summary = json.loads((run / "summary.json").read_text())
    out: dict[str, Any] = {
        "rounds": summary["rounds"],
        "best": summary["best"],
        "hard": json.loads((run / "hard" / "selection.json").read_text()),
        "traces": json.loads((run / "prepare" / "traces.json").read_text()),
    }
    for i in (1, 2):
        rows = [json.loads(line) for line in (run / ("round-%d" % i) / "samples.jsonl").read_text().splitlines()]
        out["samples-%d" % i] = sorted((r["key"], r["sample_index"], r["passed"]) for r in rows)
        out["train-%d" % i] = (run / ("round-%d" % i) / "train.jsonl").read_text()
        tensors = load_file(run / ("round-%d" % i) / "adapter" / "adapter_model.safetensors")
        out["adapter-%d" % i] = {
            k: [round(x, 5) for x in v.flatten().tolist()[:50]] for k, v in sorted(tensors.items())
        }
    for entry in out["rounds"]:
        entry.get("train", {}).pop("train_runtime_s", None)
        for volatile in ("peak_rss_mb", "adapter_path", "merged_path"):  # measurements and paths, not results
            entry.get("train", {}).pop(volatile, None)
    return out


@pytest.fixture(scope="module")
def straight_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One uninterrupted two-round run (its config file and what `next run` printed), shared by
    the end-to-end test and the kill-and-resume test, which compares its results against it."""
    root = tmp_path_factory.mktemp("straight")
    config = make_run(root, tiny_model)
    done = subprocess.run(_next("run", str(config), "--quiet"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return config, done


@pytest.mark.slow
def test_two_rounds_end_to_end_with_every_stage_s_artefacts(
    straight_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    config, done = straight_run
    run = config.parent / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    assert sorted(manifest["stages"]) == sorted(STAGES)
    assert [s for s, _ in sorted(manifest["stages"].items(), key=lambda kv: kv[1]["order"])] == STAGES

    traces = json.loads((run / "prepare" / "traces.json").read_text())
    assert set(traces) == {"train/add", "train/double", "train/last", "train/is_even", "dev/count", "dev/neg"}
    assert "# (0) a=1; b=2;" in traces["train/add"]
    hard = json.loads((run / "hard" / "selection.json").read_text())
    assert hard["pass_at_1"]["train/add"] == 0.25 and len(hard["selected"]) == 4  # 1 in 4 < 0.5

    for i, kept in ((1, 4), (2, 8)):  # 1 in 4, then 2 in 4 of the 16 samples pass
        folder = run / ("round-%d" % i)
        samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == 16 and all(s["adapter"] == ("" if i == 1 else "round-1") for s in samples)
        filters = json.loads((folder / "filters.json").read_text())
        assert filters["kept"] == kept and filters["drops"]["passes-all-tests"] == 16 - kept
        train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
        assert len(train) == kept and all("<|im_start|>assistant" in t["prompt"] for t in train)
        assert all(t["completion"].startswith("The program returns") for t in train)
        assert (folder / "adapter" / "adapter_model.safetensors").is_file()
        meta = json.loads((folder / "adapter" / "next_training.json").read_text())
        assert meta["config"]["warm_start_adapter"] == "" and meta["data"]["kept"] == kept  # from the base each round
        assert json.loads((folder / "activation.json").read_text())["verified"] is True
        metrics = json.loads((folder / "eval" / "metrics.json").read_text())
        assert set(metrics["dev"]) >= {
            "pass@1/trace",
            "pass@2/trace",
            "pass@1/no-trace",
            "greedy/trace",
            "proxy-pass@1",
        }

    summary = json.loads((run / "summary.json").read_text())
    dev = {r["model"]: r["eval"]["dev"]["pass@1/trace"] for r in summary["rounds"]}
    assert dev == {"base": 0.25, "round-1": 0.5, "round-2": 0.75} and summary["best"] == "round-2"
    for name in ("report.md", "report.html", "pass_at_k.png", "filter_drops.png"):
        assert (run / "report" / name).stat().st_size > 0
    assert any((run / "report" / "tensorboard").iterdir())
    tally = json.loads((run / "report" / "dev-tally.json").read_text())
    assert sorted(tally) == ["base", "round-1", "round-2"] and sum(n for n, _ in tally["base"].values()) == 8
    changes = {c["model"]: c["change"] for c in summary["comparisons"] if (c["set_name"], c["tag"]) == ("dev", "trace")}
    assert changes["base"] is None and changes["round-2"]["value"] == 0.5 and changes["round-2"]["tasks"] == 2
    assert "change vs base [95% CI]" in (run / "report" / "report.md").read_text()
    assert "dev pass@1 (trace): base 0.250 -> round-2 0.750, change +0.500" in done.stdout
    page = (run / "report" / "report.html").read_text()
    assert "trace the model read" in page and "# (0)" in page and "PASSED" in page

    status = subprocess.run(_next("status", str(run), "--json"), capture_output=True, text=True, check=True)
    state = json.loads(status.stdout)
    assert state["state"] == "finished" and all(s["state"] == "completed" for s in state["stages"])
    # a finished run is a no-op to rerun: every stage is skipped
    again = subprocess.run(_next("run", str(config), "--quiet"), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((run / "manifest.json").read_text()) == manifest


def _started_stages(events: Path) -> list[str]:
    if not events.exists():
        return []
    stages = []
    for line in events.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("kind") == "started" and event.get("stage") != "run":
            stages.append(event["stage"])
    return stages


@pytest.mark.slow
def test_killed_in_every_stage_and_resumed_gives_the_same_results(
    tmp_path: Path, tiny_model: Path, straight_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    config = make_run(tmp_path / "killed", tiny_model)
    events = tmp_path / "killed" / "run" / "events.jsonl"
    killed: list[str] = []
    for _attempt in range(40):
        proc = subprocess.Popen(_next("run", str(config), "--quiet"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        target = None
        while proc.poll() is None:
            fresh = [s for s in _started_stages(events) if s not in killed]
            if fresh:
                target = fresh[0]
                time.sleep(0.3 if target.endswith("/train") else 0.05)  # into the stage's work
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait(timeout=60)
        if target is None:
            assert proc.returncode == 0, proc.stderr.read()[-3000:] if proc.stderr else ""
            break
        killed.append(target)
    # Every stage gets killed once as it starts, except a very quick one that can finish within
    # the polling interval (filter, activate with replay); the long ones are always caught.
    assert {"round-1/train", "round-2/train"} <= set(killed) and len(set(killed)) >= 10, killed
    assert _results(tmp_path / "killed" / "run") == _results(straight_run[0].parent / "run")


def test_a_round_whose_filters_keep_nothing_is_reported_not_trained(tmp_path: Path, tiny_model: Path) -> None:
    config = make_run(tmp_path, tiny_model, rounds=1)
    overrides = ["--set", "filters.names=[rationale-cites-trace]", "--set", "filters.on_empty=stop"]
    overrides += ["--set", "hard_problems.enabled=false"]
    done = subprocess.run(_next("run", str(config), *overrides), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]  # it ran and did not pass; a bad config would be 2
    assert "run failed: round-1: the filters kept no sample; stopping (filters.on_empty)" in done.stderr
    # stderr is no terminal: plain timestamped lines for each stage and each bar, no carriage returns
    assert "\r" not in done.stderr
    lines = [line.split(" ", 2)[2] for line in done.stderr.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert "stage prepare: started" in lines and "round-1: started, 16 samples" in lines
    assert any(re.fullmatch(r"round-1: done in [\d.]+s, 16/16 samples \(100%\)", line) for line in lines), lines
    assert any(
        re.match(r"stage round-1/sample: done in [\d.]+s \(services [\d.]+s\): samples=16, ", ln) for ln in lines
    )
    assert any(line.startswith("stage round-1/filter: done") and "kept=0" in line for line in lines), lines
    run = tmp_path / "run"
    assert json.loads((run / "round-1" / "filters.json").read_text())["drops"] == {"rationale-cites-trace": 16}
    assert not (run / "round-1" / "adapter").exists()
    status = json.loads(subprocess.run(_next("status", str(run), "--json"), capture_output=True, text=True).stdout)
    assert status["state"] == "failed"
