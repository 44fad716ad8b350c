"""Before and after, with confidence: each model's pass@1 and its paired change against the base model.

Everything is recomputed from the evaluation logs in a run directory (one row per graded
sample), so the figures of a report and of ``dev-tally.json`` can be checked by anyone who
holds the logs or the tally.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from next_controller.rows import SampleRow, read_rows
from next_tasks.metrics import Estimate, mean_pass_at_k, paired_difference

Counts = dict[str, tuple[int, int]]


def tally(rows: Iterable[SampleRow], task_ids: list[str] | None = None) -> Counts:
    """(samples, passed) per task, for pass@k; ``task_ids`` lists tasks that count even with no rows."""
    counts = dict.fromkeys(task_ids or [], (0, 0))
    for r in rows:
        n, c = counts.get(r.task_id, (0, 0))
        counts[r.task_id] = (n + 1, c + int(r.passed))
    return counts


def eval_folder(root: Path, model: str) -> Path:
    return root / "eval" / "base" if model == "base" else root / model / "eval"


def eval_log(root: Path, model: str, set_name: str, tag: str) -> Path:
    """The sampled (not greedy) evaluation log of ``model`` on one set, with or without traces."""
    return eval_folder(root, model) / ("%s-%s.jsonl" % (set_name, tag))


@dataclass(frozen=True)
class Comparison:
    model: str
    set_name: str
    tag: str  # "trace" or "no-trace"
    pass_at_1: Estimate
    change: Estimate | None  # against the base model, paired over tasks; None for the base itself

    @property
    def significant(self) -> bool:
        """The interval of the change excludes 0."""
        return self.change is not None and (self.change.low > 0 or self.change.high < 0)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["significant"] = self.significant
        return out


def compare(root: Path, models: list[str], bootstrap: int = 10000, seed: int = 0) -> list[Comparison]:
    """Every (model, set, trace/no-trace) whose evaluation log exists, base first in each group."""
    found: dict[tuple[str, str], dict[str, Counts]] = {}
    for model in models:
        folder = eval_folder(root, model)
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
            set_name, _, tag = path.stem.partition("-")
            if tag not in ("trace", "no-trace"):
                continue  # greedy and proxy logs
            found.setdefault((set_name, tag), {})[model] = tally(read_rows(path))
    out = []
    for (set_name, tag), by_model in sorted(found.items()):
        base = by_model.get("base")
        for model in models:
            counts = by_model.get(model)
            if not counts:
                continue
            shared = base is not None and set(base) == set(counts) and model != "base"
            change = paired_difference(base, counts, 1, bootstrap, seed=seed) if shared and base else None
            out.append(Comparison(model, set_name, tag, mean_pass_at_k(counts, 1, bootstrap, seed=seed), change))
    return out


def dev_tally(root: Path, models: list[str], tag: str = "trace") -> dict[str, dict[str, list[int]]]:
    """``{model: {task_id: [samples, passed]}}`` on dev: enough to recompute every dev interval."""
    out = {}
    for model in models:
        path = eval_log(root, model, "dev", tag)
        if path.exists():
            out[model] = {t: [n, c] for t, (n, c) in sorted(tally(read_rows(path)).items())}
    return out


def interval(est: Estimate, signed: bool = False) -> str:
    fmt = "%+.3f [%+.3f, %+.3f]" if signed else "%.3f [%.3f, %.3f]"
    return fmt % (est.value, est.low, est.high)
