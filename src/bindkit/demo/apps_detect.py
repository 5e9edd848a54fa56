"""The applications stage, detect part: a detector trained with text class embeddings, then swapped to sound and IMU.

The detector (`bindkit.apps.detect`) learns on train-split scenes (train writers) from the frozen vision encoder's
dense maps, its classifier rows being the text class embeddings. On the held-out scenes, each (scene, digit) pair
scores a hit when the top box for that digit's class overlaps its true box at IoU >= 0.5, first with the text rows,
then with the rows swapped for one held-out recording per class (audio) and one held-out IMU trace per class.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bindkit.apps.boxes import Box
from bindkit.apps.detect import Detector, box_iou
from bindkit.apps.detect_train import DetectorTrainConfig, train_detector
from bindkit.apps.overlay import overlay
from bindkit.dense import DenseOutput
from bindkit.model import ImageBind
from bindkit.worlds import DigitsWorld
from bindkit.worlds.captions import WORDS
from bindkit.worlds.scenes import Scenes, sample_scenes


@dataclass(frozen=True)
class DetectSettings:
    """Train scenes for the detector head and its schedule."""

    n_train_scenes: int = 300
    steps: int = 600


def model_boxes(scenes: Scenes, size: int) -> list[torch.Tensor]:
    """Each scene's boxes in model pixels (the canvas is resized to size x size)."""
    return [torch.from_numpy(b).float() * (size / scenes.canvas) for b in scenes.boxes]


def one_per_class(emb: torch.Tensor, y: np.ndarray) -> torch.Tensor:
    """(10, D): the first held-out item of each digit (one recording / trace per class)."""
    return torch.stack([emb[int(np.flatnonzero(y == d)[0])] for d in range(10)])


def top_box_accuracy(det: Detector, dense: torch.Tensor, scenes: Scenes, size: int) -> float:
    """Share (%) of (scene, digit) pairs whose top box for the digit's class has IoU >= 0.5 with its true box."""
    hits = []
    for d, boxes, digits in zip(dense, model_boxes(scenes, size), scenes.digits, strict=True):
        for b, c in zip(boxes, digits, strict=True):
            top, _ = det.best_box(d[None], int(c))
            hits.append(float(box_iou(top, b[None])[0, 0]) >= 0.5)
    return 100.0 * float(np.mean(hits))


def run_detect(model: ImageBind, dense_fn: Any, test_out: DenseOutput, test_scenes: Scenes, size: int,
               bank: dict[str, tuple[torch.Tensor, np.ndarray]], world_seed: int, s: DetectSettings, run: Path,
               method: str = "value") -> dict[str, Any]:  # fmt: skip
    """Train the detector on train scenes with text rows; top-box accuracy with text, audio and IMU rows."""
    train = sample_scenes(DigitsWorld(seed=world_seed), "train", s.n_train_scenes, seed=world_seed)
    dense, test_dense = dense_fn(train).dense, test_out.dense
    labels = [torch.from_numpy(d) for d in train.digits]
    cfg = DetectorTrainConfig(steps=s.steps, class_names=tuple(WORDS), method=method)
    folder = run / "apps" / "detector"
    shutil.rmtree(folder, ignore_errors=True)  # a run that had the stage trains afresh
    det, _ = train_detector(model, dense, model_boxes(train, size), labels, bank["text"][0], folder, cfg,
                            geometry=(test_out.patch, test_out.stride))  # fmt: skip
    rows: dict[str, torch.Tensor] = {"text": bank["text"][0]}
    rows |= {m: one_per_class(*bank[m]) for m in ("audio", "imu") if m in bank}
    acc = {m: top_box_accuracy(det.with_classes(r), test_dense, test_scenes, size) for m, r in rows.items()}
    path = plot_detections(det.with_classes(rows.get("audio", rows["text"])), test_dense, test_scenes, size,
                           run / "plots" / "applications_detect.png")  # fmt: skip
    return {"top_box_iou50": acc, "n_train_scenes": len(train), "steps": s.steps, "method": method,
            "figure": str(path.relative_to(run))}  # fmt: skip


def plot_detections(det: Detector, dense: torch.Tensor, scenes: Scenes, size: int, path: Path, n: int = 8) -> Path:
    """A row of held-out scenes with the detector's boxes and labels (classifier rows as given)."""
    assert scenes.images is not None, "scenes rendered without images"
    tiles = []
    scale = scenes.canvas / size
    for j in range(min(n, len(scenes))):
        found = det.detect(dense[j : j + 1])[0]
        xyxy = [[int(v * scale) for v in b.tolist()] for b in found.boxes]
        boxes = [Box(x0, y0, x1, y1, float(sc), (0, 0)) for (x0, y0, x1, y1), sc in zip(xyxy, found.scores, strict=True)]
        labels = [f"{WORDS[int(c)]} {float(sc):.2f}" for c, sc in zip(found.labels, found.scores, strict=True)]
        tiles.append(np.asarray(overlay(Image.fromarray(scenes.images[j]), None, boxes, labels, scale=2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, 1)).save(path)
    return path


def detect_md(r: dict[str, Any]) -> list[str]:
    """The report's detect section."""
    a = r["top_box_iou50"]
    return [
        f"A detector head on the frozen vision encoder's dense map, trained {r['steps']} steps on {r['n_train_scenes']}"
        " train-writer scenes with the text class embeddings as its classifier; then its rows swapped, no retraining."
        " Top box for the queried digit at IoU >= 0.5 on the held-out scenes:", "",
        "| classifier rows | top-box accuracy % |", "|---|---|", *[f"| {k} | {v:.1f} |" for k, v in a.items()], "",
        f"![detect]({r['figure']})", "",
    ]  # fmt: skip
