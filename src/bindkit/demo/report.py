"""The demo's report: `report.json` (every number), `report.md` (the tables) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bindkit.train.plots import read_metrics, smooth

HIGHLIGHT = ("audio->depth", "imu->audio", "depth->thermal", "thermal->imu", "audio->thermal", "depth->imu",
             "video->audio", "audio->video", "text->audio", "text->imu")  # fmt: skip


def write_json(result: dict[str, Any], path: Path) -> Path:
    """Every figure of the run as JSON."""
    path.write_text(json.dumps(result, indent=1) + "\n")
    return path


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def _text_paired_md(s: dict[str, Any]) -> str:
    if s.get("text_paired") is None:
        return ("Text-paired column: not run in this preset (it gives that time to binding; the full preset runs "
                "it).")  # fmt: skip
    return "Text-paired column: the same encoders trained with (X, text) pairs instead."


def zero_shot_md(zs: dict[str, dict]) -> list[str]:
    """The zero-shot table: emergent vs text-paired top-1 per modality."""
    lines = [
        "| modality | emergent top-1 | emergent top-5 | text-paired top-1 | gap (points) |",
        "|---|---|---|---|---|",
    ]
    for m, row in zs.items():
        tp = row.get("text_paired", {}).get("top1")
        lines.append(f"| {m} | {_pct(row['emergent']['top1'])} | {_pct(row['emergent'].get('top5'))} | "
                     f"{_pct(tp)} | {_pct(row.get('gap'))} |")  # fmt: skip
    return lines


def retrieval_md(ret: dict[str, dict]) -> list[str]:
    """Retrieval R@1/R@5 for pairs never trained together (highlighted first), then the rest."""
    never = [k for k in ret if not ret[k]["trained_together"]]
    order = [k for k in HIGHLIGHT if k in never] + sorted(k for k in never if k not in HIGHLIGHT)
    lines = ["| query -> gallery | R@1 | R@5 |", "|---|---|---|"]
    lines += [f"| {k} | {_pct(ret[k]['R@1'])} | {_pct(ret[k]['R@5'])} |" for k in order]
    return lines


def few_shot_md(fs: dict[str, dict]) -> list[str]:
    """Few-shot linear-probe top-1 (mean ± std over seeds) per modality and shot count."""
    shots = [k for k in next(iter(fs.values())) if k.startswith("k=")]
    lines = ["| modality | " + " | ".join(f"{k.split('=')[1]}-shot" for k in shots) + " |",
             "|---|" + "---|" * len(shots)]  # fmt: skip
    for m, row in fs.items():
        lines.append(
            f"| {m} | " + " | ".join(f"{row[k]['mean']:.1f} ± {row[k]['std']:.1f}" for k in shots) + " |"
        )
    return lines


def _anchor_md(s: dict[str, Any]) -> str:
    """How the run got its image-text anchor (older report.json files lack the field: they trained it)."""
    if s.get("train_anchor", True):
        return "image-text CLIP-style from scratch in this run"
    if s.get("anchor_dir"):
        return f"the pretrained anchor in `{s['anchor_dir']}` (`bindkit demo --anchor`)"
    return "bindkit's pretrained demo anchor (`bindkit/assets/demo_anchor`, `scripts/train_demo_anchor.py`)"


def robustness_section(result: dict[str, Any]) -> list[str]:
    """The audio robustness table (held-out voices and the held-out engine), when the run has one."""
    from .robustness import robustness_md

    if "audio_robustness" not in result:
        return []
    return ["## Audio robustness (emergent top-1 %, held-out voices; per voice engine)", "",
            *robustness_md(result["audio_robustness"]), ""]  # fmt: skip


def write_markdown(result: dict[str, Any], path: Path) -> Path:
    """The human-readable report: set-up, the four tables, targets and timings."""
    s, t, ar = result["settings"], result["timings_s"], result["arithmetic"]
    lines = [
        f"# bindkit demo ({s['preset']}, seed {s['seed']})", "",
        f"Digits world: {s['n_train']} train instances (writers 0-{s['train_writers'] - 1}), {s['n_test']} test "
        f"instances from held-out writers and voices. Model `{s['config']}`. "
        f"Anchor: {_anchor_md(s)}, then frozen; audio, depth, thermal and IMU bound with (image, X) pairs only; "
        "video through the frozen image encoder. " + _text_paired_md(s), "",
        "## Emergent zero-shot classification (top-1 %, test split)", "", *zero_shot_md(result["zero_shot"]), "",
        "## Cross-modal retrieval, pairs never trained together (relevant = same digit)", "",
        *retrieval_md(result["retrieval"]), "",
        "## Few-shot linear probes (top-1 %, mean ± std over seeds)", "", *few_shot_md(result["few_shot"]), "",
        *video_md(result.get("video"), result["zero_shot"]["video"]["emergent"]["top1"]), *arithmetic_md(ar),
        *robustness_section(result),
        *applications_md(result),
        "## Targets", "", *[f"- {k}: {'met' if v['met'] else 'NOT met'} ({v['detail']})" for k, v in result["targets"].items()], "",
        "## Time", "", "| stage | seconds |", "|---|---|", *[f"| {k} | {v:.1f} |" for k, v in t.items()], "",
        f"Load average at start / end: {result['load_average']['start']} / {result['load_average']['end']}.", "",
        "Plots: `plots/training.png`, `plots/zero_shot.png`, `plots/retrieval.png`.", "",
    ]  # fmt: skip
    path.write_text("\n".join(lines))
    return path


def video_md(video: dict[str, Any] | None, demo_top1: float) -> list[str]:
    """The video section: zero-shot top-1 of each clip alone, of all clips (official) and of the demo's tail."""
    if not video:
        return []
    n, c = len(video["clips"]), video["clip_seconds"]
    head = " | ".join(f"clip {i + 1} ({i * c:g}-{(i + 1) * c:g} s)" for i in range(n))
    return [
        "## Video: which frames the frozen image encoder sees", "",
        "A world video shows the digit being written: only its last frames show it finished. Zero-shot top-1 (%) of "
        "each 2-frame clip alone, of the average of all of them (the official loader's even spread over the video) "
        f"and of the demo's choice, the last {video['tail_clips']} clip(s) (`last_seconds` in the model's "
        "`preprocess`, which the video column above uses):", "",
        f"| {head} | all clips | last {video['tail_clips']} |", "|" + "---|" * (n + 2),
        "| " + " | ".join(_pct(v) for v in video["clips"]) + f" | {_pct(video['all_clips'])} | "
        f"{_pct(demo_top1)} |", "",
    ]


def arithmetic_md(ar: dict[str, Any]) -> list[str]:
    """The arithmetic section: per pair, both queries over the weight sweep, the single terms and the ceiling."""
    first = next(iter(ar.values()))
    weights = list(first["sum"])
    lines = [
        "## Embedding arithmetic: an attribute seen + a digit from another modality", "",
        f"unit(a) * (1 - w) + unit(b) * w against a's test items; share (%) of the top {first['k']} holding a's "
        f"attribute and b's digit, over {first['n_queries']} queries. `sum`: the paper's query (w = 0.5); "
        "`replace`: a's component along the anchor's ten text class embeddings (the digit it shows) taken out "
        "first (`bindkit.demo.arithmetic`).", "",
        "| query a + b (attribute) | " + " | ".join(f"w={w}" for w in weights) + " | a alone | b alone | best possible |",
        "|---|" + "---|" * (len(weights) + 3),
    ]  # fmt: skip
    for pair, row in ar.items():
        a, b = pair.split("+")
        for q in ("sum", "replace"):
            cells = " | ".join(_pct(v) for v in row[q].values())
            lines.append(f"| {pair} ({row['attribute']}), {q} | {cells} | {_pct(row[a])} | {_pct(row[b])} | "
                         f"{_pct(row['ceiling'])} |")  # fmt: skip
    return [*lines, ""]


def applications_md(result: dict[str, Any]) -> list[str]:
    """The applications section (present when the stage ran)."""
    apps = result.get("applications")
    if not apps:
        return []
    from .apps_detect import detect_md
    from .apps_locate import locate_md

    lines = ["## Applications", ""]
    if "locate" in apps:
        lines += ["### Locate: where in a scene a sound, a text or an IMU trace points", "", *locate_md(apps["locate"])]
    if "detect" in apps:
        lines += ["### Detect: a text-trained detector with its classes swapped for sounds and IMU traces", "",
                  *detect_md(apps["detect"])]  # fmt: skip
    if "generate" in apps:
        from .apps_generate import markdown

        lines += markdown(apps["generate"])
    return lines


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_training(runs: dict[str, Path], path: Path) -> Path:
    """Loss curves (smoothed) of the three training runs, one panel each, one line per pair."""
    fig = _figure(4.2 * len(runs), 3.4)
    for i, (name, metrics) in enumerate(runs.items()):
        ax = fig.add_subplot(1, len(runs), i + 1)
        recs = read_metrics(metrics)
        for j, pair in enumerate(sorted({r["pair"] for r in recs})):
            rs = [r for r in recs if r["pair"] == pair]
            ax.plot([r["step"] for r in rs], smooth([r["loss"] for r in rs], 10), color=f"C{j}", label=pair)
        ax.set(title=name, xlabel="step", ylabel="InfoNCE loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_zero_shot(zs: dict[str, dict], path: Path) -> Path:
    """Bar chart: emergent vs text-paired zero-shot top-1 per modality (chance dotted)."""
    fig = _figure(7, 3.6)
    ax = fig.add_subplot()
    mods = list(zs)
    x = list(range(len(mods)))
    ax.bar(
        [i - 0.2 for i in x], [zs[m]["emergent"]["top1"] for m in mods], 0.4, label="emergent (image-bound)"
    )
    tp = [zs[m].get("text_paired", {}).get("top1", 0.0) for m in mods]
    if any(tp):  # presets without the text-paired run have no comparison bars
        ax.bar([i + 0.2 for i in x], tp, 0.4, label="text-paired")
    ax.axhline(10.0, color="k", linestyle=":", linewidth=0.8, label="chance")
    ax.set_xticks(x, mods)
    ax.set(ylabel="zero-shot top-1 (%)", ylim=(0, 100), title="zero-shot on held-out writers and voices")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_retrieval(ret: dict[str, dict], path: Path) -> Path:
    """Matrix of R@1 (query rows, gallery columns); pairs trained together are marked with *."""
    mods = list(dict.fromkeys(k.split("->")[0] for k in ret))
    fig = _figure(6, 5)
    ax = fig.add_subplot()
    grid = [[ret[f"{q}->{g}"]["R@1"] if q != g else float("nan") for g in mods] for q in mods]
    im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for i, q in enumerate(mods):
        for j, g in enumerate(mods):
            if q != g:
                r = ret[f"{q}->{g}"]
                ax.text(j, i, f"{r['R@1']:.0f}{'*' if r['trained_together'] else ''}", ha="center", va="center",
                        color="w" if r["R@1"] < 60 else "k", fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(mods)), mods, rotation=45)
    ax.set_yticks(range(len(mods)), mods)
    ax.set(xlabel="gallery", ylabel="query", title="R@1 (%), same digit; * = trained together")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path)
    return path
