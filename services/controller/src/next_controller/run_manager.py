"""Runs executed by the controller service, as tasks of its event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from next_common.config_files import apply_overrides, parse_mapping
from next_common.errors import FailedPreconditionError, ResourceExhaustedError
from next_common.jsonlines import Tail
from next_common.paths import confine
from next_controller import app
from next_controller.check import refuse_on_problems
from next_controller.config import RunConfig, parse_run_config
from next_controller.rundir import EVENTS
from next_controller.settings import ControllerSettings
from next_controller.status import run_status

log = logging.getLogger(__name__)


class RunManager:
    def __init__(self, settings: ControllerSettings | None = None) -> None:
        self.settings = settings or ControllerSettings()
        self._active: dict[Path, asyncio.Task[Any]] = {}

    def _run_dir(self, run_dir: str) -> Path:
        return confine(run_dir, self.settings.runs_root, "run_dir", "runs root")

    def parse(self, config_yaml: str, overrides: list[str]) -> RunConfig:
        config = parse_run_config(apply_overrides(parse_mapping(config_yaml, "config"), overrides))
        return config.model_copy(update={"run_dir": str(self._run_dir(config.run_dir))})

    async def start(self, config: RunConfig) -> Path:
        """Checks the run as ``next run --check`` does, then starts it in the background."""
        await refuse_on_problems(config)  # bad data, an unknown filter, an unreachable service: refused now
        root = config.path  # from here to create_task nothing awaits: two starts of one run cannot both pass
        if root in self._active and not self._active[root].done():
            raise FailedPreconditionError("run %s is already executing" % root)
        running = sum(1 for t in self._active.values() if not t.done())
        if running >= self.settings.max_active_runs:
            raise ResourceExhaustedError("%d run(s) already executing; retry later" % running)
        task = asyncio.create_task(self._execute(config), name="run %s" % root)
        self._active[root] = task
        return root

    async def _execute(self, config: RunConfig) -> None:
        try:
            await app.run(config, progress=False)
        except Exception:
            log.exception("run %s failed", config.run_dir)  # the run's events hold the reason too

    def active(self, run_dir: str) -> bool:
        task = self._active.get(self._run_dir(run_dir))
        return task is not None and not task.done()

    def status(self, run_dir: str) -> dict[str, Any]:
        status = run_status(self._run_dir(run_dir))
        status["active"] = self.active(run_dir)
        return status

    async def events(self, run_dir: str) -> AsyncIterator[dict[str, Any]]:
        root = self._run_dir(run_dir)
        tail = Tail(root / EVENTS)
        ended = False
        while True:
            events = tail.read_new()
            for event in events:
                yield event
            if events:
                last = events[-1]
                ended = last.get("stage") == "run" and last.get("kind") in ("finished", "failed")
            if ended and not self.active(run_dir):
                return
            if not self.active(run_dir) and not (root / EVENTS).exists():
                run_status(root)  # raises NOT_FOUND for a directory that holds no run
                return
            await asyncio.sleep(self.settings.poll_interval_s)

    async def close(self) -> None:
        for task in self._active.values():
            task.cancel()
        await asyncio.gather(*self._active.values(), return_exceptions=True)
