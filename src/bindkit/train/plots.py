"""PNG plots of a run's metrics (loss and in-batch retrieval accuracy per pair), drawn with matplotlib's Agg canvas
directly, so no global backend is switched."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_warned: list[bool] = []  # warn about a missing matplotlib once per process


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def smooth(values: list[float], k: int) -> list[float]:
    """Trailing moving average over up to `k` points."""
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= k:
            acc -= values[i - k]
        out.append(acc / min(i + 1, k))
    return out


def plot_metrics(metrics: str | Path, out_dir: str | Path) -> list[Path]:
    """Write `loss.png` and `accuracy.png` (one line per pair, raw and smoothed); without matplotlib (the
    `bindkit[train]` extra) log a warning once and write nothing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        if not _warned:
            log.warning("matplotlib is not installed (pip install 'bindkit[train]'): run plots are skipped")
            _warned.append(True)
        return []

    records = [r for r in read_metrics(metrics) if "pair" in r]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = sorted({r["pair"] for r in records})
    written = []
    for key, title in (("loss", "InfoNCE loss"), ("acc", "in-batch retrieval top-1")):
        if not any(key in r for r in records):  # e.g. a decoder run logs its denoising loss only
            continue
        fig = Figure(figsize=(7, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for i, p in enumerate(pairs):
            rs = [r for r in records if r["pair"] == p]
            x, y = [r["step"] for r in rs], [r[key] for r in rs]
            ax.plot(x, y, color=f"C{i}", alpha=0.25, linewidth=0.8)
            ax.plot(x, smooth(y, max(1, len(y) // 20)), color=f"C{i}", label=p)
            if key == "acc" and rs:
                ax.axhline(1 / rs[-1]["batch"], color=f"C{i}", linestyle=":", linewidth=0.8)  # chance
        ax.set(xlabel="step", ylabel=key, title=title)
        if pairs:
            ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / ("loss.png" if key == "loss" else "accuracy.png")
        fig.savefig(path)
        written.append(path)
    return written
