"""Reports of a run: a per-round table (Markdown), PNG plots, an HTML page that shows sampled
rationales beside the trace they read and the verdict they got, and TensorBoard scalars.

Everything is rebuilt from the run directory, so ``next report RUN_DIR`` can be rerun at any time.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from next_controller.comparison import compare, dev_tally
from next_controller.rundir import read_json, read_jsonl, write_atomic, write_json

PLOTS = ("pass_at_k.png", "filter_drops.png")


def _metrics_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = summary["rounds"]
    sets = sorted({s for r in rows for s in r["eval"]})
    names = sorted({m for r in rows for s in r["eval"].values() for m in s}, key=_metric_order)
    header = ["model", "kept samples", "train loss"] + ["%s %s" % (s, m) for s in sets for m in names]
    body = []
    for r in rows:
        kept = str(r.get("filter", {}).get("kept", "")) if r["model"] != "base" else ""
        loss = r.get("train", {}).get("final_loss")
        cells = [r["model"] + (" (best)" if r["model"] == summary["best"] else ""), kept, "%.4f" % loss if loss else ""]
        for s in sets:
            for m in names:
                v = r["eval"].get(s, {}).get(m)
                cells.append("" if v is None else "%.3f" % v)
        body.append(cells)
    return header, body


def _metric_order(name: str) -> tuple[int, int, str]:
    kind, _, rest = name.partition("@")
    k = int(rest.split("/")[0]) if rest[:1].isdigit() else 0
    return ({"pass": 0, "greedy/trace": 1, "greedy/no-trace": 1}.get(kind, 2), k, name)


def markdown(summary: dict[str, Any]) -> str:
    header, body = _metrics_table(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    timing = [
        "",
        "| stage | wall s | waiting on services s | controller overhead s | controller CPU s |",
        "|---|---|---|---|---|",
    ]
    order = summary.get("stage_order") or list(summary["timings"])
    for stage in order:
        t = summary["timings"][stage]
        if t:
            timing.append(
                "| %s | %.1f | %.1f | %.2f | %.2f |"
                % (stage, t["wall_s"], t["service_s"], t["overhead_s"], t.get("controller_cpu_s", 0.0))
            )
    walls = sum(t.get("wall_s", 0) for t in summary["timings"].values())
    overhead = sum(t.get("overhead_s", 0) for t in summary["timings"].values())
    cpu = sum(t.get("controller_cpu_s", 0) for t in summary["timings"].values())
    share = "%.2f%%" % (100 * overhead / walls) if walls else "n/a"
    cpu_share = "%.1f%%" % (100 * cpu / walls) if walls else "n/a"
    tail = [
        "",
        "Best model on dev %s: **%s** (%.3f). Controller overhead: %s of wall time (%s counting"
        " its CPU time, which mostly overlaps the services' work)."
        % (summary["metric"], summary["best"], summary["value"], share, cpu_share),
    ]
    return "\n".join(lines + _comparison_lines(summary) + timing + tail) + "\n"


def _comparison_lines(summary: dict[str, Any]) -> list[str]:
    header, body = _comparison_table(summary)
    if not body:
        return []
    return [
        "",
        "pass@1 with 95% bootstrap intervals over tasks; the change is paired by task against the base model.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in body),
    ]


def _comparison_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["set", "prompt", "model", "pass@1 [95% CI]", "change vs base [95% CI]", "tasks"]
    body = []
    for c in summary.get("comparisons", []):
        p, d = c["pass_at_1"], c["change"]
        change = (
            ""
            if d is None
            else "%+.3f [%+.3f, %+.3f]%s" % (d["value"], d["low"], d["high"], " *" if c["significant"] else "")
        )
        prompt = "with trace" if c["tag"] == "trace" else "without trace"
        body.append(
            [
                c["set_name"],
                prompt,
                c["model"],
                "%.3f [%.3f, %.3f]" % (p["value"], p["low"], p["high"]),
                change,
                str(p["tasks"]),
            ]
        )
    return header, body


def headline(summary: dict[str, Any]) -> str:
    """One line: the best model against the base on dev, with the paired interval (or why there is none)."""
    tag = summary["metric"].partition("/")[2] or "trace"
    rows = {c["model"]: c for c in summary.get("comparisons", []) if c["set_name"] == "dev" and c["tag"] == tag}
    base, best = rows.get("base"), rows.get(summary["best"])
    if base is None:
        return "no dev evaluation log to compare"
    before = base["pass_at_1"]
    if best is None or best["change"] is None:
        return "dev pass@1 (%s): base %.3f [%.3f, %.3f]; no trained round beat it" % (
            tag,
            before["value"],
            before["low"],
            before["high"],
        )
    after, d = best["pass_at_1"], best["change"]
    verdict = "significant at 95%" if best["significant"] else "not significant at 95%"
    return "dev pass@1 (%s): base %.3f -> %s %.3f, change %+.3f [95%% CI %+.3f, %+.3f], %s (%d tasks)" % (
        tag,
        before["value"],
        summary["best"],
        after["value"],
        d["value"],
        d["low"],
        d["high"],
        verdict,
        d["tasks"],
    )


def _plots(root: Path, summary: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rounds"]
    models = [r["model"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    intervals = {
        (c["model"], c["tag"]): c["pass_at_1"] for c in summary.get("comparisons", []) if c["set_name"] == "dev"
    }
    for metric in sorted(
        {m for r in rows for m in r["eval"].get("dev", {}) if m.startswith("pass@")}, key=_metric_order
    ):
        values = [r["eval"].get("dev", {}).get(metric, float("nan")) for r in rows]
        tag = metric.partition("/")[2]
        cis = [intervals[(m, tag)] for m in models if (m, tag) in intervals]
        if metric.startswith("pass@1/") and len(cis) == len(models):
            pairs = list(zip(values, cis, strict=True))
            errors = [[v - ci["low"] for v, ci in pairs], [ci["high"] - v for v, ci in pairs]]
            ax.errorbar(models, values, yerr=errors, marker="o", capsize=4, label=metric + " (95% CI)")
        else:
            ax.plot(models, values, marker="o", label=metric)
    ax.set_title("dev pass@k by round, with and without traces")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    first = root / "report" / PLOTS[0]
    fig.savefig(first, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    rounds = [r for r in rows if r["model"] != "base"]
    filters = sorted({f for r in rounds for f in r.get("filter", {}).get("drops", {})})
    bottom = [0] * len(rounds)
    for f in filters:
        values = [r.get("filter", {}).get("drops", {}).get(f, 0) for r in rounds]
        ax.bar([r["model"] for r in rounds], values, bottom=bottom, label=f)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    ax.bar(
        [r["model"] for r in rounds], [r.get("filter", {}).get("kept", 0) for r in rounds], bottom=bottom, label="kept"
    )
    ax.set_title("samples dropped by each filter, per round")
    ax.legend(fontsize=7)
    fig.tight_layout()
    second = root / "report" / PLOTS[1]
    fig.savefig(second, dpi=100)
    plt.close(fig)
    return [first, second]


def _examples(root: Path, traces: dict[str, str | None], limit: int = 12) -> list[dict[str, Any]]:
    """Sampled rationales of the last round that has samples: passing ones first, then failing."""
    rounds = sorted(root.glob("round-*/samples.jsonl"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not rounds:
        return []
    rows = read_jsonl(rounds[-1])
    rows.sort(key=lambda r: (not r["passed"], r["task_id"], r["sample_index"]))
    seen: set[str] = set()
    picked = []
    for r in rows:
        if r["task_id"] in seen:
            continue
        seen.add(r["task_id"])
        picked.append({**r, "trace": traces.get(r["task_id"]) or "", "round": rounds[-1].parent.name})
        if len(picked) == limit:
            break
    return picked


def html_report(summary: dict[str, Any], examples: list[dict[str, Any]]) -> str:
    esc = html.escape
    header, body = _metrics_table(summary)
    table = "<table><tr>%s</tr>%s</table>" % (
        "".join("<th>%s</th>" % esc(h) for h in header),
        "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % esc(c) for c in row) for row in body),
    )
    cheader, cbody = _comparison_table(summary)
    if cbody:
        table += "<h2>Change against the base model</h2><p>%s</p><table><tr>%s</tr>%s</table>" % (
            esc(headline(summary)),
            "".join("<th>%s</th>" % esc(h) for h in cheader),
            "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % esc(c) for c in row) for row in cbody),
        )
    cards = []
    for ex in examples:
        verdict = "PASSED" if ex["passed"] else "FAILED: %s" % ex.get("why", "")
        cards.append(
            '<div class="ex"><h3>%s, sample %d (%s) <span class="%s">%s</span></h3>'
            '<div class="cols"><div><h4>trace the model read</h4><pre>%s</pre></div>'
            "<div><h4>rationale</h4><pre>%s</pre><h4>fix</h4><pre>%s</pre></div></div></div>"
            % (
                esc(ex["task_id"]),
                ex["sample_index"],
                esc(ex["round"]),
                "ok" if ex["passed"] else "bad",
                esc(verdict),
                esc(ex["trace"]),
                esc(ex.get("rationale") or ""),
                esc(ex.get("program") or "(no program parsed)"),
            )
        )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:13px}pre{background:#f6f6f6;padding:6px;white-space:pre-wrap;font-size:12px}"
        ".cols{display:grid;grid-template-columns:1fr 1fr;gap:1em}.ok{color:#070}.bad{color:#a00}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>NExT run report</title><style>%s</style></head><body>"
        "<h1>NExT self-training run</h1><p>Best model on dev %s: <b>%s</b> (%.3f)</p>%s"
        "<h2>Plots</h2><img src='%s'><img src='%s'><h2>Sampled rationales</h2>%s</body></html>\n"
        % (
            style,
            esc(summary["metric"]),
            esc(summary["best"]),
            summary["value"],
            table,
            PLOTS[0],
            PLOTS[1],
            "".join(cards),
        )
    )


def _tensorboard(root: Path, summary: dict[str, Any]) -> Path:
    from tensorboard.summary import Writer

    folder = root / "report" / "tensorboard"
    for old in folder.glob("events.*"):
        old.unlink()  # rebuilt from scratch: a rerun never duplicates points
    writer = Writer(str(folder))
    for step, r in enumerate(summary["rounds"]):
        for set_name, metrics in r["eval"].items():
            for name, value in metrics.items():
                writer.add_scalar("%s/%s" % (set_name, name), value, step=step)
        for f, dropped in r.get("filter", {}).get("drops", {}).items():
            writer.add_scalar("filters/%s" % f, dropped, step=step)
    writer.close()
    return folder


def load_summary(root: Path) -> dict[str, Any]:
    """A run's summary.json, with the paired comparisons computed if it predates them."""
    summary: dict[str, Any] = read_json(root / "summary.json")
    if "comparisons" not in summary:
        summary["comparisons"] = [c.to_json() for c in compare(root, [r["model"] for r in summary["rounds"]])]
    return summary


async def write_report(root: Path) -> tuple[list[Path], dict[str, Any]]:
    summary = load_summary(root)
    models = [r["model"] for r in summary["rounds"]]
    folder = root / "report"
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "dev-tally.json", dev_tally(root, models))
    traces_path = root / "prepare" / "traces.json"
    traces = json.loads(traces_path.read_text()) if traces_path.exists() else {}
    md = folder / "report.md"
    write_atomic(md, markdown(summary))
    plots = _plots(root, summary)
    page = folder / "report.html"
    write_atomic(page, html_report(summary, _examples(root, traces)))
    _tensorboard(root, summary)
    return [md, page, *plots, folder / "dev-tally.json"], {"report": str(page), "headline": headline(summary)}
