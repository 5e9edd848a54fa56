"""`bindkit demo`: build the digits world, train an image-text anchor, bind four modalities through images only,
train the text-paired comparison, evaluate on held-out writers and voices, and write the report.

Run directory (default `~/.cache/bindkit/runs/demo/<timestamp>`, with `latest` pointing at the newest run):
    model/            the trained six-encoder model (bindkit.save_model; loader constants in its config)
    test/             the held-out split as files plus manifest.jsonl (what `bindkit serve` indexes)
    train/            the three training runs (metrics.jsonl, plots, configs)
    report.md report.json zero_shot.png retrieval.png
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bindkit.checkpoint import save_model
from bindkit.hub import default_cache_dir
from bindkit.model import ImageBind
from bindkit.worlds import DigitsWorld, to_files

from .data import DemoData, build_data, labels
from .report import write_report
from .scores import (
    arithmetic_query,
    class_embeddings,
    embed,
    few_shot_table,
    retrieval_matrix,
    test_embeddings,
    zero_shot_table,
)
from .settings import BOUND, PRESETS, DemoSettings, demo_config
from .training import train_anchor, train_bound


@dataclass
class DemoResult:
    """Where the run went and what it measured."""

    run_dir: Path
    model_dir: Path
    report: dict
    seconds: float


def default_run_root() -> Path:
    """`~/.cache/bindkit/runs/demo` (or under `$XDG_CACHE_HOME`): where `bindkit serve` looks for `latest`."""
    return default_cache_dir() / "runs" / "demo"


def new_run_dir(root: Path) -> Path:
    """A fresh timestamped run folder under `root`, with `root/latest` pointing at it."""
    run = root / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while run.exists():
        run, n = root / f"{time.strftime('%Y%m%d-%H%M%S')}-{n}", n + 1
    run.mkdir(parents=True)
    latest = root / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run.name)
    return run


def run_demo(run_root: str | Path | None = None, quick: bool = False, seed: int = 0, progress: bool = True,
             preset: str | None = None) -> DemoResult:  # fmt: skip
    """Run the whole demo offline on the CPU; `quick` (or `preset="tiny"` for tests) shrinks it."""
    settings = PRESETS[preset or ("quick" if quick else "full")]
    run, t0 = new_run_dir(Path(run_root) if run_root else default_run_root()), time.perf_counter()
    torch.manual_seed(seed)
    data = build_data(demo_config(), settings.n_train, settings.n_test, settings.n_probe_pool, seed)
    _log(progress, f"world built: {settings.n_train} train / {settings.n_test} test instances")
    anchor = train_anchor(data.train_inputs, settings.anchor, run / "train" / "anchor", seed, progress)
    bound = train_bound(
        data.train_inputs, anchor.model_dir, settings.bind, run / "train" / "bind", seed, progress
    )
    paired = train_bound(data.train_inputs, anchor.model_dir, settings.text_paired, run / "train" / "text_paired",
                         seed, progress, via="text")  # fmt: skip
    model = _with_preprocess(bound.model, data)
    model_dir = save_model(model, run / "model")
    report = evaluate(model, paired.model, data, settings, seed)
    to_files(data.test, run / "test")
    report.update(settings=dataclasses.asdict(settings), seconds=time.perf_counter() - t0, run_dir=str(run))
    write_report(report, run)
    _log(progress, f"report: {run / 'report.md'}")
    return DemoResult(run, model_dir, report, report["seconds"])


def _with_preprocess(model: ImageBind, data: DemoData) -> ImageBind:
    """Store the fitted loader constants in the model's config, so files load like the demo's tensors."""
    cfg = model.config
    for m, pre in data.preprocess.items():
        cfg = cfg.replace_encoder(m, preprocess={**cfg.encoders[m].preprocess, **pre})
    model.config = cfg
    return model.eval()


def evaluate(model: ImageBind, paired: ImageBind, data: DemoData, s: DemoSettings, seed: int) -> dict:
    """Every table of the report on the held-out split."""
    y, prompts = labels(data.test), DigitsWorld.class_prompts()
    emb = test_embeddings(model, data.test_inputs)
    paired_emb = {m: embed(paired, m, data.test_inputs[m]) for m in BOUND}
    zs = zero_shot_table(
        emb, paired_emb, class_embeddings(model, prompts), class_embeddings(paired, prompts), y
    )
    n = len(data.probe.digit)
    train_emb = {m: embed(model, m, data.train_inputs[m][:n]) for m in BOUND}
    train_emb["image"] = embed(model, "vision", data.train_inputs["vision"][:n])
    train_emb["video"] = embed(model, "vision", data.probe_video)
    few = few_shot_table(train_emb, labels(data.probe), emb, y, s.shots, s.probe_seeds)
    arith = arithmetic_query(emb["image"], emb["audio"], list(data.test.surface), np.asarray(y),
                             s.arithmetic_queries, seed)  # fmt: skip
    return {"zero_shot": zs, "retrieval": retrieval_matrix(emb, y), "few_shot": few, "arithmetic": arith}


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[demo] {msg}", flush=True)
