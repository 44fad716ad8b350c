"""Where a run stands, read from its run directory (manifest and events) alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from next_common.errors import NotFoundError
from next_controller.rundir import EVENTS, MANIFEST, read_json, read_jsonl


def run_status(root: Path) -> dict[str, Any]:
    if not (root / MANIFEST).exists() and not (root / EVENTS).exists():
        raise NotFoundError("%s is not a run directory (no manifest or events)" % root)
    manifest = read_json(root / MANIFEST) if (root / MANIFEST).exists() else {"stages": {}}
    events = read_jsonl(root / EVENTS) if (root / EVENTS).exists() else []
    stages: dict[str, dict[str, Any]] = {}
    state = "pending"
    for event in events:
        stage, kind = event.get("stage"), event.get("kind")
        if stage == "run":
            state = {"started": "running", "resumed": "running", "finished": "finished", "failed": "failed"}.get(
                str(kind), state
            )
            continue
        entry = stages.setdefault(str(stage), {"name": stage, "state": "pending"})
        if kind == "started":
            entry["state"] = "running"
        elif kind in ("completed", "skipped"):
            entry["state"] = "completed"
        elif kind == "failed":
            entry["state"] = "failed"
            entry["error"] = event.get("error", "")
    for name, record in manifest["stages"].items():
        entry = stages.setdefault(name, {"name": name})
        entry.update(state="completed", timing=record.get("timing"), summary=record.get("summary"))
    return {"state": state, "stages": list(stages.values())}
