"""Before/after with confidence, recomputed from a run directory's evaluation logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from next_controller.comparison import compare, dev_tally, eval_log
from next_controller.report import headline, markdown
from next_controller.rows import SampleRow
from next_tasks.metrics import paired_difference


def _log(root: Path, model: str, set_name: str, tag: str, passed: dict[str, list[bool]]) -> None:
    path = eval_log(root, model, set_name, tag)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [row(t, i, p) for t, outcomes in passed.items() for i, p in enumerate(outcomes)]
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))


def row(task_id: str, index: int, passed: bool) -> SampleRow:
    return SampleRow(task_id + "|trace", task_id, index, True, "", "", None, "none", passed, "", "", index, "stop")


def _run(root: Path) -> None:
    # 30 dev tasks: the base fixes 1 of 4 samples on 10 of them (10/120); round 1 fixes 3 of 4 on the
    # same 10 and 1 of 4 on 10 more (40/120). Held-out: no change.
    base = {"t%02d" % i: [i < 10, False, False, False] for i in range(30)}
    better = {"t%02d" % i: [i < 20, i < 10, i < 10, False] for i in range(30)}
    _log(root, "base", "dev", "trace", base)
    _log(root, "round-1", "dev", "trace", better)
    _log(root, "base", "heldout", "trace", base)
    _log(root, "round-1", "heldout", "trace", base)
    greedy = eval_log(root, "base", "dev", "trace-greedy")
    greedy.write_text(json.dumps(row("t00", 0, True).to_json()) + "\n")  # not a sampled log


def test_each_model_is_compared_with_the_base_on_the_same_tasks(tmp_path: Path) -> None:
    _run(tmp_path)
    found = {(c.model, c.set_name, c.tag): c for c in compare(tmp_path, ["base", "round-1"], bootstrap=2000)}
    assert set(found) == {(m, s, "trace") for m in ("base", "round-1") for s in ("dev", "heldout")}
    dev = found[("round-1", "dev", "trace")]
    assert dev.pass_at_1.value == pytest.approx(40 / 120) and found[("base", "dev", "trace")].change is None
    assert dev.change is not None and dev.change.value == pytest.approx(30 / 120) and dev.significant
    held = found[("round-1", "heldout", "trace")]
    assert held.change is not None and held.change.value == 0.0 and not held.significant
    tally = dev_tally(tmp_path, ["base", "round-1"])
    assert tally["base"]["t00"] == [4, 1] and tally["round-1"]["t00"] == [4, 3] and len(tally["round-1"]) == 30
    # anyone holding the tally gets the same interval
    again = paired_difference(
        {t: (n, c) for t, (n, c) in tally["base"].items()},
        {t: (n, c) for t, (n, c) in tally["round-1"].items()},
        bootstrap=2000,
    )
    assert again == dev.change


def test_the_report_states_the_change_and_whether_it_is_significant(tmp_path: Path) -> None:
    _run(tmp_path)
    comparisons = [c.to_json() for c in compare(tmp_path, ["base", "round-1"], bootstrap=2000)]
    summary = {
        "best": "round-1",
        "metric": "pass@1/trace",
        "value": 40 / 120,
        "rounds": [
            {"model": "base", "eval": {"dev": {"pass@1/trace": 10 / 120}}},
            {"model": "round-1", "eval": {"dev": {"pass@1/trace": 40 / 120}}},
        ],
        "comparisons": comparisons,
        "timings": {},
    }
    line = headline(summary)
    assert line.startswith("dev pass@1 (trace): base 0.083 -> round-1 0.333, change +0.250 [95% CI +")
    assert line.endswith("significant at 95% (30 tasks)")
    table = markdown(summary)
    assert "| dev | with trace | round-1 | 0.333 [" in table and "| heldout | with trace | round-1 |" in table
    assert "+0.000 [+0.000, +0.000] |" in table  # held-out: no change, no star
