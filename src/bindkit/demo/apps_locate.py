"""The applications stage, locate part: point at a queried digit in held-out scenes, with sound, text and IMU queries.

Scenes (`bindkit.worlds.scenes`) come from the test split's writers; queries are the run's held-out test files
(`test/`: voices and IMU traces of held-out writers) and the text classifier's class embeddings. A (scene, query)
pair scores a hit when the heatmap's peak falls inside the queried digit's box; chance is the digits' mean share
of the canvas. The dense method is chosen by measurement on a validation set: each of `bindkit.dense.METHODS` is
scored with text queries on scenes of train writers (`choose_method`), and the report gives them all there and on
the scored test scenes.

    bindkit demo --on-run RUN_DIR     # this stage (and the other applications) on an existing run
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bindkit.apps.boxes import Box
from bindkit.apps.locate import grid_peak, to_pixels
from bindkit.apps.overlay import overlay
from bindkit.dense import METHODS, DenseOutput, dense_embeddings
from bindkit.model import ImageBind
from bindkit.worlds import DigitsWorld
from bindkit.worlds.captions import WORDS
from bindkit.worlds.inputs import image_tensor
from bindkit.worlds.scenes import GRID, Scenes, sample_scenes

from . import scores
from .apps_detect import DetectSettings, run_detect
from .files import Split, read_split

QUERY_MODALITIES = ("audio", "text", "imu")


@dataclass(frozen=True)
class LocateSettings:
    """How many held-out scenes, with how many digits each, and the model pixels per scene side (2 cells)."""

    n_scenes: int = 200
    counts: tuple[int, ...] = (3,)
    seed: int = 0
    n_val: int = 100  # train-writer scenes the dense method is chosen on (text queries), apart from the scored ones


def scene_inputs(model: ImageBind, scenes: Scenes) -> torch.Tensor:
    """Canvases as vision inputs, each cell at the model's input size (the scale its digits were trained at)."""
    assert scenes.images is not None, "scenes rendered without images"
    return image_tensor(scenes.images, size=GRID * model.config.encoders["vision"].input_shape[-1])


def query_bank(model: ImageBind, test: Split) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """Per query modality, unit embeddings (N, D) and their digits: held-out files, and text class embeddings."""
    y = test.digits
    bank: dict[str, tuple[torch.Tensor, np.ndarray]] = {m: (scores.embed(model, m, test.inputs[m]), y) for m in ("audio", "imu") if m in test.inputs}
    bank["text"] = (scores.class_embeddings(model), np.arange(len(WORDS)))
    return bank


def pick_queries(bank: tuple[torch.Tensor, np.ndarray], scenes: Scenes) -> list[torch.Tensor]:
    """Per scene, one query row per digit (k, D): the held-out items of that digit taken in turn."""
    emb, y = bank
    by_digit = {d: np.flatnonzero(y == d) for d in range(10)}
    turn = dict.fromkeys(range(10), 0)
    out = []
    for digits in scenes.digits:
        rows = []
        for d in digits:
            pool = by_digit[int(d)]
            rows.append(int(pool[turn[int(d)] % len(pool)]))
            turn[int(d)] += 1
        out.append(emb[rows])
    return out


def pointing(out: DenseOutput, queries: list[torch.Tensor], scenes: Scenes, size: int,
             ) -> tuple[float, list[list[tuple[int, int]]]]:  # fmt: skip
    """Share of (scene, digit) pairs whose heatmap peak lies in that digit's box, and every peak (x, y)."""
    hits, peaks = [], []
    patch, stride = out.patch, out.stride
    for d, q, boxes in zip(out.dense, queries, scenes.boxes, strict=True):
        grids = torch.einsum("hwd,kd->khw", d, q)  # (k, h, w)
        row = []
        for g, (x0, y0, x1, y1) in zip(grids, boxes, strict=True):
            x, y = grid_peak(g, patch, stride, size, scenes.canvas, scenes.canvas)
            hits.append(x0 <= x + 0.5 <= x1 and y0 <= y + 0.5 <= y1)
            row.append((int(x), int(y)))
        peaks.append(row)
    return 100.0 * float(np.mean(hits)), peaks


def run_locate(model: ImageBind, test: Split, world_seed: int, s: LocateSettings, run: Path,
               detect: DetectSettings | None = None) -> dict[str, Any]:  # fmt: skip
    """Pointing accuracy per query modality (and per dense method with text), chance and the overlay grid; then,
    with `detect`, the swapped-classifier detector's scores on the same scenes."""
    model.eval()
    scenes = sample_scenes(DigitsWorld(seed=world_seed), "test", s.n_scenes, seed=s.seed, counts=s.counts)
    enc = model.encoder("vision")
    size = GRID * enc.cfg.input_shape[-1]
    bank = query_bank(model, test)
    queries = {m: pick_queries(bank[m], scenes) for m in QUERY_MODALITIES if m in bank}
    x = scene_inputs(model, scenes)
    dense = {m: _dense(enc, x, m) for m in METHODS}
    methods = {m: pointing(dense[m], queries["text"], scenes, size)[0] for m in METHODS}
    chosen_on = choose_method(model, bank["text"], world_seed, s)
    best = max(chosen_on, key=lambda m: chosen_on[m])
    acc, peaks = {}, {}
    for m, q in queries.items():
        acc[m], peaks[m] = pointing(dense[best], q, scenes, size)
    path = plot_grid(dense[best], queries, peaks, scenes, size, run / "plots" / "applications_locate.png")
    out = {"pointing": acc, "method": best, "methods_text": methods, "methods_val": chosen_on,
           "chance": 100.0 * scenes.digit_area_share(),
           "random_digit": 100.0 * float(np.mean([1 / len(d) for d in scenes.digits])),
           "n_scenes": len(scenes), "n_val": s.n_val, "counts": list(s.counts), "canvas_px": scenes.canvas,
           "model_px": size,
           "grid": int(dense[best].dense.shape[1]), "figure": str(path.relative_to(run))}  # fmt: skip
    if detect is not None:
        fn = lambda sc: _dense(enc, scene_inputs(model, sc), best)  # noqa: E731
        out["detect"] = run_detect(model, fn, dense[best], scenes, size, bank, world_seed, detect, run, best)
    return out


def choose_method(model: ImageBind, text: tuple[torch.Tensor, np.ndarray], world_seed: int, s: LocateSettings,
                  ) -> dict[str, float]:  # fmt: skip
    """Text-query pointing of every dense method on `s.n_val` scenes of *train* writers (a validation set: the
    scored test scenes play no part in the choice); the stage uses the best."""
    val = sample_scenes(DigitsWorld(seed=world_seed), "train", s.n_val, seed=s.seed + 7919, counts=s.counts)
    enc, x = model.encoder("vision"), scene_inputs(model, val)
    size, queries = GRID * enc.cfg.input_shape[-1], pick_queries(text, val)
    return {m: pointing(_dense(enc, x, m), queries, val, size)[0] for m in METHODS}


@torch.no_grad()
def _dense(enc: Any, x: torch.Tensor, method: str, batch: int = 64) -> DenseOutput:
    parts = [dense_embeddings(enc, x[i : i + batch], method) for i in range(0, len(x), batch)]
    return DenseOutput(torch.cat([p.embedding for p in parts]), torch.cat([p.dense for p in parts]),
                       parts[0].patch, parts[0].stride)  # fmt: skip


def plot_grid(out: DenseOutput, queries: dict[str, list[torch.Tensor]], peaks: dict[str, list], scenes: Scenes,
              size: int, path: Path, n: int = 6) -> Path:  # fmt: skip
    """Rows: scenes; columns: the scene, then one overlay per query modality for its first digit (box + peak)."""
    tiles = []
    assert scenes.images is not None, "scenes rendered without images"
    for j in range(min(n, len(scenes))):
        img = Image.fromarray(scenes.images[j])
        b = scenes.boxes[j][0]
        box = Box(int(b[0]), int(b[1]), int(np.ceil(b[2])), int(np.ceil(b[3])), 1.0, (0, 0))
        row = [overlay(img, None, [box], [WORDS[int(scenes.digits[j][0])]], scale=2)]
        for m in queries:
            heat = to_pixels(out.dense[j] @ queries[m][j][0], out.patch, out.stride, size, scenes.canvas, scenes.canvas)
            row.append(overlay(img, heat, [box], [m], peak=peaks[m][j][0], scale=2))
        tiles.append(np.concatenate([np.asarray(t) for t in row], 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, 0)).save(path)
    return path


def locate_md(r: dict[str, Any]) -> list[str]:
    """The report's locate section."""
    p = r["pointing"]
    return [
        f"Pointing accuracy on {r['n_scenes']} held-out scenes ({'/'.join(map(str, r['counts']))} digits by "
        f"different test writers, {r['canvas_px']} px canvas seen at {r['model_px']} px, {r['grid']}x{r['grid']} "
        "patches): the share of (scene, query) pairs whose heatmap peak falls inside the queried digit's box.", "",
        "| query | pointing % |", "|---|---|", *[f"| {k} | {v:.1f} |" for k, v in p.items()],
        f"| chance (digit's share of the canvas) | {r['chance']:.1f} |", "",
        f"Picking one of a scene's digits at random: {r['random_digit']:.1f}%.", "",
        _method_line(r), "",
        f"![locate]({r['figure']})", "",
    ]  # fmt: skip


def _method_line(r: dict[str, Any]) -> str:
    """The report's sentence on the dense method: where it was chosen, and every method's text pointing."""
    pct = lambda d: ", ".join(f"{k} {v:.1f}%" for k, v in d.items())  # noqa: E731
    # a report.json written before the validation scenes chose it on the scored scenes
    where = f"on {r['n_val']} scenes of train writers ({pct(r['methods_val'])})" if "methods_val" in r else \
        "on the scored scenes"
    return (f"Dense method (`bindkit.dense`), chosen by text-query pointing {where}: **{r['method']}**; "
            f"on the scored scenes above: {pct(r['methods_text'])}.")  # fmt: skip


def locate_stage(run: Path, s: LocateSettings | None = None, model: ImageBind | None = None,
                 detect: DetectSettings | None = None) -> dict[str, Any]:  # fmt: skip
    """The locate scores of a finished demo run directory (its model/, test/ and report.json's seed)."""
    import json

    from bindkit.checkpoint import load_model

    s = s or LocateSettings()
    model = model or load_model(run / "model")
    seed = json.loads((run / "report.json").read_text())["settings"]["seed"] if (run / "report.json").is_file() else 0
    test = read_split(run / "test" / "manifest.jsonl", model.config, modalities=("audio", "imu"))
    return run_locate(model, test, seed, s, run, detect)
