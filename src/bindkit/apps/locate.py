"""Where in an image a query matches: a heatmap over the image's pixels, its peak, and boxes.

The query (a text, a file of any modality, or an embedding) becomes one joint-space vector; the image's per-patch
embeddings (`bindkit.dense`) are scored against it by cosine similarity, giving an (h, w) map over the patch grid.
That map is resampled to the original image's pixels with each patch's value placed at its centre (bilinear in
between), and `boxes_from_heatmap` cuts boxes from it. Images are resized whole (not cropped) to `size` x `size`
model pixels, so every pixel of the original has a score; larger `size` values interpolate the positional embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bindkit.apps.boxes import Box, boxes_from_heatmap
from bindkit.apps.query import check_query, embed_query
from bindkit.data.images import CLIP_MEAN, CLIP_STD, open_image
from bindkit.dense import dense_embeddings


@dataclass
class Location:
    """One image's answer: heatmap (H, W) of cosine similarities at the image's pixels, peak (x, y), boxes."""

    heatmap: np.ndarray = field(repr=False)
    peak: tuple[int, int]
    boxes: list[Box]
    grid: np.ndarray = field(repr=False)  # (h, w) patch-level similarities

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: image size, peak, score range and boxes."""
        H, W = self.heatmap.shape
        return {"width": W, "height": H, "peak": list(self.peak), "min": float(self.heatmap.min()),
                "max": float(self.heatmap.max()), "boxes": [b.as_dict() for b in self.boxes]}  # fmt: skip


def open_rgb(items: Sequence[Any], patch: int) -> list[Image.Image]:
    """Open images (paths, PIL images, uint8 arrays) as RGB; reject any smaller than one patch, before compute."""
    out: list[Image.Image] = []
    for item in items:
        img = open_image(Path(item) if isinstance(item, str) else item).convert("RGB")
        if min(img.size) < patch:
            raise ValueError(f"image {item if isinstance(item, str | Path) else '#' + str(len(out))} is "
                             f"{img.size[0]}x{img.size[1]}, smaller than one {patch}x{patch} patch")  # fmt: skip
        out.append(img)
    return out


def to_tensor(images: list[Image.Image], size: int) -> torch.Tensor:
    """Whole images, bicubic-resized to size x size and CLIP-normalised: [B, 3, size, size]."""
    arr = np.stack([np.asarray(im.resize((size, size), Image.Resampling.BICUBIC), np.float32) for im in images])
    x = torch.from_numpy(arr).permute(0, 3, 1, 2) / 255.0
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def to_pixels(grid: torch.Tensor, patch: int, stride: int, size: int, height: int, width: int) -> np.ndarray:
    """(h, w) patch scores -> (height, width) pixel scores, each patch's value at its centre, bilinear between."""
    h, w = grid.shape

    def coords(n_px: int, n_grid: int) -> torch.Tensor:  # pixel centres -> grid units -> [-1, 1] (align_corners)
        u = ((torch.arange(n_px) + 0.5) * size / n_px - patch / 2) / stride
        return (u.clamp(0, n_grid - 1) / max(n_grid - 1, 1)) * 2 - 1

    gy, gx = torch.meshgrid(coords(height, h), coords(width, w), indexing="ij")
    sample = torch.stack([gx, gy], -1)[None].float()  # (1, H, W, 2) as (x, y)
    out = F.grid_sample(grid[None, None].float(), sample, mode="bilinear", align_corners=True)
    return out[0, 0].numpy()


@torch.no_grad()
def locate(model: Any, images: Sequence[Any], query: Any, size: int | None = None, threshold: float = 0.5,
           modality: str | None = None, method: str = "value", batch_size: int = 16) -> list[Location]:  # fmt: skip
    """Heatmap, peak and boxes of `query` (any `bindkit.apps.query` query) in each image (paths, PIL or arrays)."""
    if "vision" not in model.encoders:
        raise ValueError(f"locate needs a model with a vision encoder; this one has {list(model.encoders)}")
    enc = model.encoder("vision")
    size = size or enc.cfg.input_shape[-1]
    check_query(model, query, modality)
    pics = open_rgb(images, enc.cfg.kernel[1])
    q = embed_query(model, query, modality).vector  # (D,) unit
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(pics), batch_size):
        chunk = pics[i : i + batch_size]
        found = dense_embeddings(enc, to_tensor(chunk, size).to(device), method)
        for img, d in zip(chunk, found.dense.cpu(), strict=True):  # d: (h, w, D)
            grid = d @ q  # (h, w) cosine similarities
            heat = to_pixels(grid, found.patch, found.stride, size, img.size[1], img.size[0])
            y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
            out.append(Location(heat, (int(x), int(y)), boxes_from_heatmap(heat, threshold), grid.numpy()))
    return out
