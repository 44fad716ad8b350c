"""Publishing an adapter atomically: it appears complete under its final name, or not at all."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from next_common.errors import AlreadyExistsError

METADATA_FILE = "next_training.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def staging_dir(output_dir: Path) -> Path:
    """Same parent as the output, so the final rename never crosses file systems."""
    return output_dir.with_name("." + output_dir.name + ".partial")


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(staged: Path, output_dir: Path, metadata: dict[str, Any]) -> None:
    """Write the metadata last, flush everything to disk, then rename into place."""
    missing = [name for name in ADAPTER_FILES if not (staged / name).is_file()]
    if missing:
        raise RuntimeError("adapter was not saved completely: %s missing in %s" % (", ".join(missing), staged))
    (staged / "training_args.bin").unlink(missing_ok=True)  # a pickle; the metadata holds the settings
    (staged / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _fsync_tree(staged)
    if output_dir.exists():
        raise AlreadyExistsError("output %s appeared while the job ran; the adapter stays in %s" % (output_dir, staged))
    staged.rename(output_dir)
    fd = os.open(output_dir.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(staged: Path) -> None:
    shutil.rmtree(staged, ignore_errors=True)


def is_complete_adapter(path: Path) -> bool:
    return all((path / name).is_file() for name in (*ADAPTER_FILES, METADATA_FILE))
