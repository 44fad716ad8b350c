"""Finding the checkpoint to resume from. transformers writes checkpoints in place, not atomically,
so a job killed while saving leaves a folder that must not be resumed from."""

from __future__ import annotations

import json
import re
from pathlib import Path

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _complete(path: Path) -> bool:
    # trainer_state.json is written after the weights, optimizer and RNG states.
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    has_weights = any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    return isinstance(state, dict) and "global_step" in state and has_weights


def last_complete_checkpoint(checkpoint_dir: Path) -> Path | None:
    if not checkpoint_dir.is_dir():
        return None
    found = []
    for child in checkpoint_dir.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir() and _complete(child):
            found.append((int(match.group(1)), child))
    return max(found)[1] if found else None
