"""Boxes from a heatmap: keep what scores above a threshold relative to the map's range, then split the kept pixels
into 4-connected components; each component's bounding box is scored by its highest value."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Box:
    """A box in pixels (x0, y0 inclusive; x1, y1 exclusive), its score, and its peak point (x, y)."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float
    peak: tuple[int, int]

    def as_dict(self) -> dict:
        """The box as a JSON-ready dict."""
        return asdict(self)

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in pixels, x1 and y1 exclusive."""
        return (self.x0, self.y0, self.x1, self.y1)


def components(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels of a boolean mask (H, W): 0 outside, 1..n inside (numbered in scan order)."""
    H, W = mask.shape
    big = H * W + 1
    labels = np.where(mask, np.arange(1, H * W + 1).reshape(H, W), big)
    while True:  # each pass spreads the smallest label one step; as many passes as the longest path inside
        nxt = labels.copy()
        np.minimum(nxt[1:], labels[:-1], out=nxt[1:])
        np.minimum(nxt[:-1], labels[1:], out=nxt[:-1])
        np.minimum(nxt[:, 1:], labels[:, :-1], out=nxt[:, 1:])
        np.minimum(nxt[:, :-1], labels[:, 1:], out=nxt[:, :-1])
        nxt = np.where(mask, nxt, big)
        if np.array_equal(nxt, labels):
            break
        labels = nxt
    _, dense = np.unique(np.where(mask, labels, 0), return_inverse=True)
    return dense.reshape(H, W)  # label 0 is the background whenever any pixel is outside the mask


def boxes_from_heatmap(heat: np.ndarray, threshold: float = 0.5, min_pixels: int = 1, top: int | None = None,
                       ) -> list[Box]:  # fmt: skip
    """Boxes of the regions where heat >= min + threshold * (max - min), best score first."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.ndim != 2 or heat.size == 0:
        raise ValueError(f"boxes_from_heatmap: expected a 2-D map, got shape {heat.shape}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (a share of the map's range), got {threshold}")
    lo, hi = float(heat.min()), float(heat.max())
    mask = heat >= lo + threshold * (hi - lo)
    labels = components(mask)
    offset = 0 if mask.all() else 1  # label 0 is the background unless the whole map is kept
    boxes = []
    for k in range(offset, int(labels.max()) + 1):
        ys, xs = np.nonzero(labels == k)
        if len(ys) < min_pixels:
            continue
        i = int(np.argmax(heat[ys, xs]))
        boxes.append(Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1,
                         float(heat[ys[i], xs[i]]), (int(xs[i]), int(ys[i]))))  # fmt: skip
    boxes.sort(key=lambda b: -b.score)
    return boxes[:top] if top else boxes
