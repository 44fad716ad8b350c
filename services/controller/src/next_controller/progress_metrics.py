"""A run's progress as Prometheus metrics (docs/architecture.md: Metrics).

``observe(root, event)`` takes each event as the run records it (``RunDir.event`` hands every
one over) and sets gauges labelled with the run directory (``run``): the run's state, the stage
it is at, its round out of how many, when a stage last completed and how long each took, and
the training step and loss. A resumed run first replays its ``events.jsonl``, so a restarted
controller pod reports the history too. ``SampleCounts`` feeds the samples done and expected
of the sampling batch in progress from the same counts the progress lines show (``Run.bar``).

Only gauges: replaying events sets the same values again, nothing counts twice. Served by
``next serve`` and by ``next run`` when ``CONTROLLER_METRICS_PORT`` is set (``app.run``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import Enum, Gauge

RUN_STATE = Enum(
    "next_controller_run_state", "The run's state", ["run"], states=["pending", "running", "finished", "failed"]
)
STAGE_INFO = Gauge(
    "next_controller_stage_info",
    "1 for the stage the run is at (its latest stage event), with that stage's state",
    ["run", "stage", "state"],
)
ROUND = Gauge("next_controller_round", "The round the run is in (0 before round 1, then 1..rounds)", ["run"])
ROUNDS = Gauge("next_controller_rounds", "The rounds the run is configured for", ["run"])
STAGES_COMPLETED = Gauge("next_controller_stages_completed", "Stages complete (run now or found complete)", ["run"])
LAST_COMPLETED = Gauge(
    "next_controller_last_stage_completion_timestamp_seconds", "When a stage last completed (Unix time)", ["run"]
)
STAGE_SECONDS = Gauge("next_controller_stage_wall_seconds", "Wall time a completed stage took", ["run", "stage"])
TRAIN_STEP = Gauge("next_controller_train_step", "The latest step of the round being trained", ["run"])
TRAIN_LOSS = Gauge("next_controller_train_loss", "The latest training loss of the round being trained", ["run"])
SAMPLES_DONE = Gauge(
    "next_controller_samples_done", "Samples drawn and graded in a sampling batch (this attempt)", ["run", "batch"]
)
SAMPLES_EXPECTED = Gauge(
    "next_controller_samples_expected",
    "Samples a sampling batch draws (this attempt; logged ones are kept)",
    ["run", "batch"],
)

_ROUND = re.compile(r"^round-(\d+)(/|$)")


@dataclass
class _Run:
    stage: tuple[str, str] | None = None  # (stage, state) of the STAGE_INFO series shown
    completed: set[str] = field(default_factory=set)


_runs: dict[str, _Run] = {}


def observe(root: Path, event: dict[str, Any]) -> None:
    """Update the run's gauges from one of its events (``RunDir.event`` calls this for each)."""
    run = str(root)
    if event.get("stage") == "run" and event.get("kind") == "resumed":
        replay(root)
    _apply(root, run, event)


def replay(root: Path) -> None:
    """Set the gauges from every event the run recorded so far."""
    from next_controller.rundir import EVENTS, read_jsonl  # rundir calls observe: imported late

    for event in read_jsonl(root / EVENTS):
        _apply(root, str(root), event)


def _apply(root: Path, run: str, event: dict[str, Any]) -> None:
    stage, kind = str(event.get("stage", "")), str(event.get("kind", ""))
    state = _runs.setdefault(run, _Run())
    if stage == "run":
        if kind in ("started", "resumed"):
            RUN_STATE.labels(run).state("running")
            ROUND.labels(run).set(0)
            rounds = _configured_rounds(root)
            if rounds is not None:
                ROUNDS.labels(run).set(rounds)
        elif kind in ("finished", "failed"):
            RUN_STATE.labels(run).state(kind)
        return
    match = _ROUND.match(stage)
    if match:  # stages before round 1 leave it at 0; select and report keep the last round
        ROUND.labels(run).set(int(match.group(1)))
    if kind == "started":
        _show(state, run, stage, "running")
    elif kind in ("completed", "skipped"):
        _show(state, run, stage, kind)
        state.completed.add(stage)
        STAGES_COMPLETED.labels(run).set(len(state.completed))
        if kind == "completed":
            LAST_COMPLETED.labels(run).set(float(event.get("time", time.time())))
            wall = (event.get("timing") or {}).get("wall_s")
            if wall is not None:
                STAGE_SECONDS.labels(run, stage).set(float(wall))
    elif kind == "failed":
        _show(state, run, stage, "failed")
    elif kind == "progress" and "step" in event:
        TRAIN_STEP.labels(run).set(float(event["step"]))
        if event.get("loss") is not None:
            TRAIN_LOSS.labels(run).set(float(event["loss"]))


def _show(state: _Run, run: str, stage: str, stage_state: str) -> None:
    if state.stage == (stage, stage_state):
        return
    if state.stage is not None:
        STAGE_INFO.remove(run, *state.stage)
    STAGE_INFO.labels(run, stage, stage_state).set(1)
    state.stage = (stage, stage_state)


def _configured_rounds(root: Path) -> int | None:
    from next_controller.rundir import CONFIG

    try:
        config = yaml.safe_load((root / CONFIG).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    rounds = config.get("rounds") if isinstance(config, dict) else None
    return rounds if isinstance(rounds, int) else None


class SampleCounts:
    """The samples done and expected of one sampling batch, as a ``Progress`` reports them."""

    def __init__(self, root: Path, batch: str) -> None:
        self.done = SAMPLES_DONE.labels(str(root), batch)
        self.expected = SAMPLES_EXPECTED.labels(str(root), batch)

    def __call__(self, n: int, total: int | None) -> None:
        self.done.set(n)
        if total is not None:
            self.expected.set(total)
