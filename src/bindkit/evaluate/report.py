"""Printing and saving evaluation results: a per-task table, the paper's Table 2 layout, and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bindkit.evaluate.tasks import TABLE2_COLUMNS, get_task, lookup


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def _details(name: str, m: dict[str, Any]) -> str:
    """One line of secondary metrics for a task."""
    if "text_to_item" in m:
        t, i = m["text_to_item"], m["item_to_text"]
        return f"{name}: text->item " + " ".join(f"{k} {_fmt(v)}" for k, v in t.items() if k.startswith("R@")) + \
            " | item->text " + " ".join(f"{k} {_fmt(v)}" for k, v in i.items() if k.startswith("R@"))  # fmt: skip
    if any(k.startswith("k=") for k in m):
        return f"{name}: " + "  ".join(
            f"{k} {v['mean']:.1f}±{v['std']:.1f}" for k, v in m.items() if k.startswith("k=")
        )
    keys = [
        k for k in ("top1", "top5", "mean_per_class_recall", "mAP", "R@1", "R@5", "R@10", "chance") if k in m
    ]
    return f"{name}: " + "  ".join(f"{k} {_fmt(m[k])}" for k in keys)


def format_report(report: dict[str, Any]) -> str:
    """The text `run_eval` prints: per-task table, detail lines, and the Table 2 layout when it applies."""
    official = report["model"].get("official", False)
    rows = []
    for name, r in report["tasks"].items():
        spec = get_task(name)
        ds, cache = r["dataset"], r["cache"]
        paper = spec.paper.get(spec.metric) if official else None
        rows.append([name, str(ds["items"]), str(ds["missing"]), spec.metric, _fmt(lookup(r["metrics"], spec.metric)),
                     _fmt(paper), f"{cache['hits']}/{cache['hits'] + cache['misses']}", f"{r['seconds']:.1f}"])  # fmt: skip
    head = ["task", "items", "missing", "metric", "ours", "paper" if official else "paper*", "cached", "s"]
    out = [f"model: {report['model']['label']}  (id {report['model']['id'][:12]})", _table(head, rows)]
    if not official:
        out.append("* paper numbers are shown only for the official imagebind_huge weights")
    out += ["", *(_details(n, r["metrics"]) for n, r in report["tasks"].items())]
    t2 = report.get("table2")
    if t2 and len(t2["columns"]) >= 2:
        cols = t2["columns"]
        t2_rows = [["ours", *(_fmt(t2["ours"][c]) for c in cols)]]
        if official:
            t2_rows.append(["paper (ImageBind-H)", *(_fmt(t2["paper"][c]) for c in cols)])
        out += ["", "Table 2 layout (emergent zero-shot; MSR-VTT text->video R@1, AS-A mAP, others top-1):",
                _table(["", *cols], t2_rows)]  # fmt: skip
    return "\n".join(out)


def table2(report_tasks: dict[str, Any]) -> dict[str, Any]:
    """The Table 2 columns covered by the tasks run, with our and the paper's numbers."""
    ours, paper = {}, {}
    for name, r in report_tasks.items():
        spec = get_task(name)
        if spec.column:
            ours[spec.column] = lookup(r["metrics"], spec.metric)
            paper[spec.column] = spec.paper.get(spec.metric)
    cols = [c for c in TABLE2_COLUMNS if c in ours]
    return {"columns": cols, "ours": ours, "paper": paper}


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Save the report as indented JSON (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))
    return path
