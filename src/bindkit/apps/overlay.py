"""Pictures of the answers: a heatmap blended over the image, with boxes, labels and the peak drawn (Pillow only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from bindkit.apps.boxes import Box

# A short dark-blue -> cyan -> yellow -> red ramp (perceptually ordered enough for a heatmap), interpolated.
RAMP = np.array([[0, 0, 90], [0, 120, 220], [0, 220, 200], [250, 230, 40], [230, 30, 20]], np.float32)
COLOURS = ["#ffffff", "#00ff66", "#ff00ff", "#ffcc00", "#00ccff"]


def colourise(heat: np.ndarray) -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 through RAMP, scaled to the map's own range."""
    lo, hi = float(heat.min()), float(heat.max())
    t = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    pos = t * (len(RAMP) - 1)
    i = np.clip(pos.astype(int), 0, len(RAMP) - 2)
    f = (pos - i)[..., None]
    return np.rint(RAMP[i] * (1 - f) + RAMP[i + 1] * f).astype(np.uint8)


def overlay(image: Image.Image, heat: np.ndarray | None, boxes: Sequence[Box] = (), labels: Sequence[str] = (),
            peak: tuple[int, int] | None = None, alpha: float = 0.5, scale: int = 1) -> Image.Image:  # fmt: skip
    """The image with the heatmap blended in (if given), boxes with optional labels, and a cross at the peak."""
    base = image.convert("RGB")
    if heat is not None:
        base = Image.blend(base, Image.fromarray(colourise(heat)).resize(base.size), alpha)
    if scale != 1:
        base = base.resize((base.width * scale, base.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(base)
    for k, b in enumerate(boxes):
        colour = COLOURS[k % len(COLOURS)]
        draw.rectangle([b.x0 * scale, b.y0 * scale, b.x1 * scale - 1, b.y1 * scale - 1], outline=colour,
                       width=max(1, scale))  # fmt: skip
        text = labels[k] if k < len(labels) else f"{b.score:.2f}"
        draw.text((b.x0 * scale + 2, b.y0 * scale + 1), text, fill=colour)
    if peak is not None:
        x, y, r = peak[0] * scale, peak[1] * scale, 3 * scale
        draw.line([x - r, y, x + r, y], fill="#ffffff", width=max(1, scale // 2))
        draw.line([x, y - r, x, y + r], fill="#ffffff", width=max(1, scale // 2))
    return base
