"""Augmentation in tensor space, on model inputs.

Image augmentation is *seeded per view*: the parameters of view v of an item are a pure function of (seed, the
item's content key, v), so the frozen anchor's embedding of that view can be cached, and the paired depth/thermal
map gets the very same crop and flip (the paper's aligned crops). Views: a random resized crop and a horizontal flip
on both sides, colour jitter on RGB images only. Per-step augmentation of the trained side (audio frequency
masking, random erasing) draws from torch's global generator, which checkpoints save and restore.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from bindkit.data.images import CLIP_MEAN, CLIP_STD

SCALE, RATIO, FLIP, JITTER = (0.35, 1.0), (3 / 4, 4 / 3), 0.5, 0.4


def view_params(keys: Sequence[str], views: np.ndarray, seed: int) -> torch.Tensor:
    """(B, 7) float64 rows [cx, cy, w, h, flip, brightness, contrast/saturation] for each (item key, view)."""
    out = np.empty((len(keys), 7))
    for i, (key, v) in enumerate(zip(keys, views, strict=True)):
        rng = np.random.default_rng([seed, int(key[:15], 16), int(v)])
        area = rng.uniform(*SCALE)
        ratio = np.exp(rng.uniform(np.log(RATIO[0]), np.log(RATIO[1])))
        w, h = min(1.0, np.sqrt(area * ratio)), min(1.0, np.sqrt(area / ratio))
        cx, cy = rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2)
        flip = float(rng.random() < FLIP)
        out[i] = (cx, cy, w, h, flip, *rng.uniform(1 - JITTER, 1 + JITTER, size=2))
    return torch.from_numpy(out)


def crop_flip(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Crop box + flip of `params` applied to (B, C, H, W) maps, resampled (bilinear) back to (H, W)."""
    p = params.to(device=x.device, dtype=torch.float32)
    sx = p[:, 2] * (1 - 2 * p[:, 4])  # a negative x scale mirrors the crop
    theta = torch.zeros(len(x), 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, 2 * p[:, 0] - 1
    theta[:, 1, 1], theta[:, 1, 2] = p[:, 3], 2 * p[:, 1] - 1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(
        x.dtype
    )


def color_jitter(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Brightness, then contrast and saturation, on CLIP-normalised RGB (B, 3, H, W), clamped to [0, 1] before
    renormalising."""
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    p = params.to(device=x.device, dtype=torch.float32)
    rgb = (x.float() * std + mean) * p[:, 5].view(-1, 1, 1, 1)
    gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)  # (B, 1, H, W)
    c = p[:, 6].view(-1, 1, 1, 1)
    rgb = (rgb - gray.mean((2, 3), keepdim=True)) * c + gray.mean((2, 3), keepdim=True)  # contrast
    rgb = gray + (rgb - gray) * c  # saturation (same factor: one draw keeps the parameter count small)
    return ((rgb.clamp(0, 1) - mean) / std).to(x.dtype)


def apply_view(x: torch.Tensor, modality: str, params: torch.Tensor) -> torch.Tensor:
    """A view of a batch: crop + flip for spatial maps (vision, depth, thermal), plus colour jitter for RGB."""
    if modality not in ("vision", "depth", "thermal") or x.ndim != 4:
        return x
    x = crop_flip(x, params)
    return color_jitter(x, params) if modality == "vision" else x


def freq_mask(x: torch.Tensor, width: int) -> torch.Tensor:
    """SpecAugment frequency masking: per item, zero a random band of [0, width) mel bins. x: (..., mel, frames)
    with the batch first."""
    if width <= 0:
        return x
    mel = x.shape[-2]
    f = torch.randint(0, width, (x.shape[0],))
    f0 = (torch.rand(x.shape[0]) * (mel - f + 1).float()).long()
    bins = torch.arange(mel)
    band = (bins >= f0[:, None]) & (bins < (f0 + f)[:, None])  # (B, mel)
    shape = (x.shape[0],) + (1,) * (x.ndim - 3) + (mel, 1)
    return x.masked_fill(band.view(shape).to(x.device), 0.0)


def random_erase(x: torch.Tensor, p: float) -> torch.Tensor:
    """With probability p per item, fill a random rectangle (2-33% of the area, aspect 0.3-3.3) with N(0, 1)
    noise. x: (B, C, H, W)."""
    if p <= 0 or x.ndim != 4:
        return x
    B, _, H, W = x.shape
    hit = torch.rand(B) < p
    area = torch.empty(B).uniform_(0.02, 1 / 3) * H * W
    ratio = torch.exp(torch.empty(B).uniform_(np.log(0.3), np.log(1 / 0.3)))
    h = (area * ratio).sqrt().round().clamp(1, H).long()
    w = (area / ratio).sqrt().round().clamp(1, W).long()
    y0 = (torch.rand(B) * (H - h + 1).float()).long()
    x0 = (torch.rand(B) * (W - w + 1).float()).long()
    ys, xs = torch.arange(H), torch.arange(W)
    rows = (ys >= y0[:, None]) & (ys < (y0 + h)[:, None])  # (B, H)
    cols = (xs >= x0[:, None]) & (xs < (x0 + w)[:, None])  # (B, W)
    box = (rows[:, :, None] & cols[:, None, :] & hit[:, None, None]).unsqueeze(1).to(x.device)  # (B, 1, H, W)
    noise = torch.randn(x.shape, dtype=x.dtype).to(x.device)
    return torch.where(box, noise, x)
