"""The run directory: every stage's outputs plus a manifest of what is complete.

A stage is complete when the manifest lists it and every output it recorded still has the
recorded SHA-256; anything else is redone. Files are written atomically (temporary file,
fsync, rename), except the sample logs, which are appended line by line as samples arrive
so that a killed run loses none (a torn last line is dropped when the log is read back).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from next_common.errors import InvalidArgumentError
from next_common.files import atomic_write, sha256_file
from next_common.jsonlines import append_line
from next_controller.progress_metrics import observe

MANIFEST = "manifest.json"
CONFIG = "config.yaml"
EVENTS = "events.jsonl"


def sha256_path(path: Path) -> str:
    """Of a file, or of a folder (every file's relative name and digest, in order)."""
    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(child.relative_to(path)).encode() + b"\0")
        digest.update(sha256_file(child).encode())
    return digest.hexdigest()


def write_atomic(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


def write_json(path: Path, value: Any) -> None:
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    write_atomic(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _complete_part(path: Path) -> bytes:
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def read_jsonl(path: Path) -> list[Any]:
    """Complete lines only: a line torn by a kill mid-write is ignored (AppendLog removes it)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in _complete_part(path).splitlines() if line.strip()]


class AppendLog:
    """JSON lines appended and flushed one by one (the sample logs)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():  # cut a torn last line before appending after it
            with open(path, "r+b") as f:
                f.truncate(len(_complete_part(path)))
        self._file = open(path, "a", encoding="utf-8")

    def append(self, row: Any) -> None:
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def resumes(self, config_text: str) -> bool:
        """True when the folder holds this run already, False when it holds none; another run's
        config is an error (nothing is written: ``next run --check`` asks too)."""
        recorded = self.root / CONFIG
        if not recorded.exists():
            return False
        if recorded.read_text(encoding="utf-8") != config_text:
            raise InvalidArgumentError(
                "%s holds a run with another configuration (%s); use a new run_dir or the same config"
                % (self.root, recorded)
            )
        return True

    def claim(self, config_text: str) -> bool:
        """Record the run's config, or check it matches the one recorded. True when resuming."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.resumes(config_text):
            return True
        write_atomic(self.root / CONFIG, config_text)
        return False

    def _manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        return read_json(path) if path.exists() else {"stages": {}}

    def record(self, stage: str) -> dict[str, Any] | None:
        """The stage's manifest entry if it is complete and its outputs are intact."""
        entry: dict[str, Any] | None = self._manifest()["stages"].get(stage)
        if entry is None:
            return None
        for rel, digest in entry["outputs"].items():
            path = self.root / rel
            if not path.exists() or sha256_path(path) != digest:
                return None
        return entry

    def complete(self, stage: str, outputs: Iterable[Path], summary: dict[str, Any], timing: dict[str, float]) -> None:
        manifest = self._manifest()
        manifest["stages"][stage] = {
            "order": 1 + max((e.get("order", 0) for e in manifest["stages"].values()), default=0),
            "outputs": {str(p.relative_to(self.root)): sha256_path(p) for p in outputs},
            "summary": summary,
            "timing": timing,
            "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json(self.root / MANIFEST, manifest)

    def stages(self) -> dict[str, Any]:
        """Complete stages in the order they completed."""
        stages: dict[str, Any] = self._manifest()["stages"]
        return dict(sorted(stages.items(), key=lambda item: item[1].get("order", 0)))

    def event(self, **fields: Any) -> None:
        record = {"time": time.time(), **fields}
        append_line(self.root / EVENTS, record)
        observe(self.root, record)  # the run's progress as Prometheus gauges
