"""The demo's report: `report.json` (everything), `report.md` (the tables) and PNG plots in the run directory."""

from __future__ import annotations

import json
from pathlib import Path

MODALITIES = ("image", "video", "audio", "depth", "thermal", "imu")
HEADLINE_PAIRS = ("audio->depth", "imu->audio", "depth->audio", "audio->thermal", "thermal->imu", "video->audio",
                  "depth->thermal", "imu->depth", "text->audio", "audio->text")  # fmt: skip


def write_report(report: dict, run: Path) -> None:
    """Write report.json, report.md and the plots."""
    (run / "report.json").write_text(json.dumps(report, indent=1, default=float))
    (run / "report.md").write_text(markdown(report))
    _plots(report, run)


def markdown(r: dict) -> str:
    """The report's tables as Markdown."""
    lines = [f"# bindkit demo ({r['settings']['name']}), {r['seconds']:.0f} s", "",
             "Held-out writers and voices. Emergent: trained only with (image, X) pairs, classified with text prompts.",
             "", "## Zero-shot top-1 (%)", "", "| modality | emergent | text-paired | gap |", "|---|---|---|---|"]  # fmt: skip
    for m in MODALITIES:
        row = r["zero_shot"][m]
        tp = row.get("text_paired", {}).get("top1")
        gap = f"{row['gap']:+.1f}" if "gap" in row else "–"
        lines.append(
            f"| {m} | {row['emergent']['top1']:.1f} | {'–' if tp is None else f'{tp:.1f}'} | {gap} |"
        )
    lines += ["", "## Cross-modal retrieval, pairs never trained together (relevant = same digit)", "",
              "| query → gallery | R@1 | R@5 |", "|---|---|---|"]  # fmt: skip
    for pair in HEADLINE_PAIRS:
        if pair in r["retrieval"]:
            v = r["retrieval"][pair]
            lines.append(f"| {pair.replace('->', ' → ')} | {v['R@1']:.1f} | {v['R@5']:.1f} |")
    shots = [k for k in next(iter(r["few_shot"].values())) if k.startswith("k=")]
    lines += ["", "## Few-shot linear probes, top-1 (%)", "", "| modality | " + " | ".join(shots) + " |",
              "|---|" + "---|" * len(shots)]  # fmt: skip
    for m, row in r["few_shot"].items():
        lines.append(
            f"| {m} | " + " | ".join(f"{row[k]['mean']:.1f} ± {row[k]['std']:.1f}" for k in shots) + " |"
        )
    a = r["arithmetic"]
    lines += ["", "## Embedding arithmetic: image (surface) + audio (spoken digit) → images", "",
              f"Share of the top {a['k']} showing both the image's surface and the spoken digit, over "
              f"{a['n_queries']} queries: **{a['image+audio']:.1f}%** (image alone {a['image']:.1f}%, audio alone "
              f"{a['audio']:.1f}%, best possible {a['ceiling']:.1f}%).", ""]  # fmt: skip
    return "\n".join(lines)


def _plots(r: dict, run: Path) -> None:
    """zero_shot.png (emergent vs text-paired bars) and retrieval.png (R@1 matrix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(MODALITIES))
    em = [r["zero_shot"][m]["emergent"]["top1"] for m in MODALITIES]
    tp = [r["zero_shot"][m].get("text_paired", {}).get("top1", np.nan) for m in MODALITIES]
    ax.bar(x - 0.2, em, 0.4, label="emergent (image-paired)")
    ax.bar(x + 0.2, tp, 0.4, label="text-paired")
    ax.set(xticks=x, xticklabels=MODALITIES, ylabel="zero-shot top-1 (%)", ylim=(0, 100))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(run / "zero_shot.png", dpi=100)
    names = list(MODALITIES) + ["text"]
    mat = np.array([[r["retrieval"].get(f"{q}->{g}", {}).get("R@1", np.nan) for g in names] for q in names])
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    im = ax.imshow(mat, vmin=0, vmax=100, cmap="viridis")
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xticklabels=names, yticklabels=names,
           xlabel="gallery", ylabel="query", title="retrieval R@1 (%)")  # fmt: skip
    for i in range(len(names)):
        for j in range(len(names)):
            if not np.isnan(mat[i, j]):
                ax.text(j, i, f"{mat[i, j]:.0f}", ha="center", va="center", color="w", fontsize=7)
    fig.colorbar(im)
    fig.tight_layout()
    fig.savefig(run / "retrieval.png", dpi=100)
    plt.close("all")
