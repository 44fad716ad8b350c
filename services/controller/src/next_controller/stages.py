"""The stage wrapper: a stage found complete in the manifest is skipped; otherwise it runs, is
timed (wall, time waiting on services, the controller's own CPU), and its outputs are recorded
with their hashes, so a killed run resumes with the same command."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from next_common.errors import FailedPreconditionError
from next_common.progress import Progress, note
from next_controller.progress_metrics import SampleCounts
from next_controller.rundir import RunDir
from next_controller.services import BusyClock

log = logging.getLogger(__name__)

StageFn = Callable[[], Awaitable[tuple[list[Path], dict[str, Any]]]]


class RunFailedError(FailedPreconditionError):
    """A stage ran and did not succeed: training failed, no sample kept, the adapter not verified.

    ``next run`` exits 1 on it (the run ran but did not pass); errors in its input (config,
    data, services) exit 2.
    """


def brief(summary: dict[str, Any], limit: int = 240) -> str:
    """A stage summary's numbers on one line (lists by their length), for progress lines."""
    parts: list[str] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk("%s.%s" % (key, k) if key else str(k), v)
        elif isinstance(value, list):
            parts.append("%s=%d" % (key, len(value)))
        elif isinstance(value, float):
            parts.append("%s=%.4g" % (key, value))
        elif isinstance(value, int) or (isinstance(value, str) and 0 < len(value) <= 40 and "\n" not in value):
            parts.append("%s=%s" % (key, value))  # long texts (model outputs, paths) stay in the manifest

    walk("", summary)
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Stages:
    """Runs the stages of one run directory; also hands out progress bars and notes."""

    def __init__(self, run_dir: RunDir, clock: BusyClock, progress: bool = True) -> None:
        self.dir = run_dir
        self.clock = clock
        self.progress = progress

    async def run(self, name: str, body: StageFn) -> dict[str, Any]:
        """The stage's summary: recorded if complete, else from running ``body``."""
        done = self.dir.record(name)
        if done is not None:
            self.dir.event(stage=name, kind="skipped", reason="complete in the manifest")
            self.note("stage %s: complete, skipped" % name)
            return dict(done["summary"])
        self.dir.event(stage=name, kind="started")
        log.info("stage %s", name)
        self.note("stage %s: started" % name)
        started, busy0, cpu0 = time.perf_counter(), self.clock.busy_s, time.process_time()
        try:
            outputs, summary = await body()
        except Exception as exc:
            self.dir.event(stage=name, kind="failed", error=str(exc))
            self.note("stage %s: failed after %.1fs: %s" % (name, time.perf_counter() - started, exc))
            raise
        wall = time.perf_counter() - started
        service = self.clock.busy_s - busy0
        timing = {
            "wall_s": round(wall, 3),
            "service_s": round(service, 3),
            # wall time during which no service call was in flight: what the controller adds to a round
            "overhead_s": round(max(wall - service, 0), 3),
            # CPU the controller itself spent (prompts, parsing, bookkeeping), much of it overlapped
            "controller_cpu_s": round(time.process_time() - cpu0, 3),
        }
        self.dir.complete(name, outputs, summary, timing)
        self.dir.event(stage=name, kind="completed", summary=summary, timing=timing)
        self.note("stage %s: done in %.1fs (services %.1fs): %s" % (name, wall, service, brief(summary)))
        return summary

    def note(self, message: str) -> None:
        if self.progress:
            note(message)

    def bar(self, total: int, desc: str) -> Progress:
        """A bar on a terminal; off one (Kubernetes Job logs), a plain line at start, every 30 s and at the end."""
        return Progress(desc, total, "sample", enabled=self.progress, on_update=SampleCounts(self.dir.root, desc))
