"""Augmentation in tensor space, on model inputs.

Image augmentation is *seeded per view*: the parameters of view v of an item are a pure function of (seed, the
item's content key, v), so the frozen anchor's embedding of that view can be cached. A view follows Table 9's image
recipe, after timm's `rand-m9-mstd0.5` training transform: a random resized crop and a horizontal flip, RandAugment
(`ViewAug.ops` ops per image drawn from `OPS`, each applied with probability 0.5 at a noisy magnitude), then colour
jitter. The geometry (crop, flip and RandAugment's rotate, shear and translate) is one affine map per view, shared by
the image and its paired depth/thermal map so they stay aligned (the paper's aligned crops); photometric ops touch RGB
only and run after the geometry, in op order. Per-step augmentation of the trained side (audio frequency masking,
random erasing) is seeded per item too, by (seed, pair, step, item, view): the same on any number of ranks and after
a resume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import bindkit.modalities as modalities
from bindkit.data.images import CLIP_MEAN, CLIP_STD

RATIO, FLIP, RA_PROB = (3 / 4, 4 / 3), 0.5, 0.5  # crop aspect range, flip and RandAugment op probabilities
BASE = 7  # view columns before RandAugment's: cx, cy, w, h, flip, brightness, contrast/saturation
# timm's RandAugment op list (_RAND_TRANSFORMS; its TranslateXRel/YRel as TranslateX/Y).
OPS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast",
       "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY")  # fmt: skip
GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")  # signed: a random sign per op


@dataclass(frozen=True)
class ViewAug:
    """The knobs of a view: crop area range, colour-jitter strength, RandAugment ops, magnitude and its noise."""

    scale: tuple[float, float] = (0.08, 1.0)  # random-resized-crop area range, fraction of the image
    jitter: float = 0.4  # brightness and contrast/saturation factors in [1 - jitter, 1 + jitter]
    ops: int = 2  # RandAugment ops per image (timm's n; 0: off)
    magnitude: float = 9.0  # of 10 (timm's m)
    std: float = 0.5  # Gaussian noise on each op's magnitude, then clipped to [0, 10] (timm's mstd)


def _crop_box(rng: np.random.Generator, scale: tuple[float, float]) -> tuple[float, float, float, float]:
    """torchvision's RandomResizedCrop box as fractions (cx, cy, w, h): 10 tries to fit, else the whole image."""
    for _ in range(10):
        area = rng.uniform(*scale)
        ratio = np.exp(rng.uniform(np.log(RATIO[0]), np.log(RATIO[1])))
        w, h = np.sqrt(area * ratio), np.sqrt(area / ratio)
        if w <= 1 and h <= 1:
            return rng.uniform(w / 2, 1 - w / 2), rng.uniform(h / 2, 1 - h / 2), w, h
    return 0.5, 0.5, 1.0, 1.0


def view_params(keys: Sequence[str], views: np.ndarray, seed: int, aug: ViewAug = ViewAug()) -> torch.Tensor:
    """(B, 7 + 3 * aug.ops) float64 rows per (item key, view): [cx, cy, w, h, flip, brightness, contrast/saturation],
    then per RandAugment op [index into OPS (-1: not applied), magnitude in [0, 10], sign +-1]."""
    out = np.empty((len(keys), BASE + 3 * aug.ops))
    for i, (key, v) in enumerate(zip(keys, views, strict=True)):
        rng = np.random.default_rng([seed, int(key[:15], 16), int(v)])
        cx, cy, w, h = _crop_box(rng, aug.scale)
        flip = float(rng.random() < FLIP)
        out[i, :BASE] = (cx, cy, w, h, flip, *(1 + aug.jitter * (2 * rng.random(2) - 1)))
        for k in range(aug.ops):
            op, on = rng.integers(len(OPS)), rng.random() < RA_PROB
            noise, neg = rng.normal(), rng.random() < 0.5
            mag = np.clip(aug.magnitude + aug.std * noise, 0.0, 10.0)
            out[i, BASE + 3 * k : BASE + 3 * k + 3] = (op if on else -1, mag, -1.0 if neg else 1.0)
    return torch.from_numpy(out)


def geometric_matrix(name: str, arg: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 3, 3) output -> input maps in normalised coordinates of PIL's transforms as timm calls them: Rotate `arg`
    degrees counter-clockwise about the centre; ShearX/Y by factor `arg` about the top-left corner; TranslateX/Y by
    `arg` of the width/height (positive: the content moves left/up). Identity for any other name."""
    a = height / width
    g = torch.eye(3, dtype=torch.float64).repeat(len(arg), 1, 1)
    arg = arg.double()
    if name == "Rotate":
        t = torch.deg2rad(-arg)
        g[:, 0, 0], g[:, 0, 1], g[:, 1, 0], g[:, 1, 1] = t.cos(), t.sin() * a, -t.sin() / a, t.cos()
    elif name == "ShearX":
        g[:, 0, 1], g[:, 0, 2] = arg * a, arg * a
    elif name == "ShearY":
        g[:, 1, 0], g[:, 1, 2] = arg / a, arg / a
    elif name == "TranslateX":
        g[:, 0, 2] = 2 * arg
    elif name == "TranslateY":
        g[:, 1, 2] = 2 * arg
    return g


def view_geometry(params: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 2, 3) affine_grid thetas of the views: crop box + flip, then RandAugment's geometric ops in op order."""
    p = params.double().cpu()
    m = torch.zeros(len(p), 3, 3, dtype=torch.float64)
    m[:, 0, 0] = p[:, 2] * (1 - 2 * p[:, 4])  # a negative x scale mirrors the crop
    m[:, 0, 2], m[:, 1, 1], m[:, 1, 2], m[:, 2, 2] = 2 * p[:, 0] - 1, p[:, 3], 2 * p[:, 1] - 1, 1.0
    for k in range((p.shape[1] - BASE) // 3):
        op, level, sign = p[:, BASE + 3 * k], p[:, BASE + 3 * k + 1] / 10, p[:, BASE + 3 * k + 2]
        for name in GEOMETRIC:
            sel = (op == OPS.index(name)).view(-1, 1, 1)
            if sel.any():  # an op applied to the cropped image acts on the output side of the crop's map
                g = geometric_matrix(name, sign * ARGS[name](level), height, width)
                m = torch.where(sel, m @ g, m)
    return m[:, :2].float()


def warp(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The views' geometry on (B, C, H, W) maps, resampled (bilinear) to (H, W). Points from outside the source
    (rotate, shear, translate) are 0: the CLIP mean colour on normalised RGB (timm fills with the mean)."""
    theta = view_geometry(params, x.shape[-2], x.shape[-1]).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    outside = (grid.abs() > 1 + 1e-6).any(-1).unsqueeze(1)
    return out.masked_fill(outside, 0.0).to(x.dtype)


# ---------------------------------------------------------------- RandAugment's photometric ops, RGB in [0, 1]
def _levels(x: torch.Tensor) -> torch.Tensor:
    """8-bit levels (long) of values in [0, 1]."""
    return (x * 255).round().clamp(0, 255).long()


def _col(v: torch.Tensor) -> torch.Tensor:
    """Per-item values (B,) shaped to broadcast over (B, C, H, W)."""
    return v.view(-1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """PIL's L conversion (ITU-R 601-2 luma) of (B, 3, H, W): (B, 1, H, W)."""
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


def _blend(degenerate: torch.Tensor, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance: degenerate + factor * (x - degenerate), clamped to [0, 1]."""
    return (degenerate + _col(factor) * (x - degenerate)).clamp(0, 1)


def auto_contrast(x: torch.Tensor, _arg: torch.Tensor) -> torch.Tensor:
    """Per channel, stretch [min, max] to [0, 1]; constant channels are left as they are."""
    lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    return torch.where(hi > lo, (x - lo) / (hi - lo).clamp_min(1e-12), x)


def equalize(x: torch.Tensor, _arg: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize per channel on 8-bit levels: lut[i] = (step // 2 + #pixels below level i) // step,
    step = (#pixels - #pixels at the top used level) // 256; the identity where step is 0."""
    b, c, h, w = x.shape
    q = _levels(x).reshape(b * c, h * w)
    levels = torch.arange(256, device=x.device)
    hist = torch.zeros(b * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, q, torch.ones_like(q))
    top = ((hist > 0).long() * levels).argmax(1, keepdim=True)
    step = (h * w - hist.gather(1, top)) // 256
    lut = ((step // 2 + hist.cumsum(1) - hist) // step.clamp_min(1)).clamp(max=255)
    lut = torch.where(step > 0, lut, levels)
    return (lut.gather(1, q).float() / 255).view(b, c, h, w)


def invert(x: torch.Tensor, _arg: torch.Tensor) -> torch.Tensor:
    """1 - x."""
    return 1 - x


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the `bits` most significant bits of each 8-bit level (0 bits: black)."""
    mask = 256 - (2 ** (8 - bits.long()))  # ~(2 ** (8 - bits) - 1) & 255
    return (_levels(x) & _col(mask)).float() / 255


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert the pixels whose 8-bit level is >= threshold."""
    return torch.where(_levels(x) >= _col(threshold), 1 - x, x)


def solarize_add(x: torch.Tensor, add: torch.Tensor) -> torch.Tensor:
    """Add `add` levels (capped at 255) to the pixels whose 8-bit level is < 128."""
    return torch.where(_levels(x) < 128, (x + _col(add) / 255).clamp(max=1), x)


def color(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Saturation: blend with the grey image."""
    return _blend(_gray(x), x, factor)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Contrast: blend with the image's mean grey level (rounded to 8 bits, as PIL)."""
    mean = (_gray(x).mean((1, 2, 3), keepdim=True) * 255 + 0.5).floor() / 255
    return _blend(mean, x, factor)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Brightness: blend with black."""
    return _blend(torch.zeros_like(x), x, factor)


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Sharpness: blend with PIL's SMOOTH filter (3x3, centre 5 of 13), whose border pixels are the original."""
    b, c, h, w = x.shape
    k = torch.ones(1, 1, 3, 3, device=x.device)
    k[..., 1, 1] = 5
    smooth = x.clone()
    smooth[..., 1:-1, 1:-1] = F.conv2d(x.reshape(b * c, 1, h, w), k / 13).view(b, c, h - 2, w - 2)
    return _blend(smooth, x, factor)


PHOTOMETRIC: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "AutoContrast": auto_contrast, "Equalize": equalize, "Invert": invert, "Posterize": posterize,
    "Solarize": solarize, "SolarizeAdd": solarize_add, "Color": color, "Contrast": contrast,
    "Brightness": brightness, "Sharpness": sharpness,
}  # fmt: skip


def _enhance(level: torch.Tensor) -> torch.Tensor:
    """timm's enhancement factor of a level: 0.1 (level 0) to 1.9 (level 1)."""
    return 1.8 * level + 0.1


# timm's level -> argument (its non-"increasing" variants), level = magnitude / 10; geometric ones get a sign.
ARGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "AutoContrast": lambda lv: lv, "Equalize": lambda lv: lv, "Invert": lambda lv: lv,
    "Rotate": lambda lv: 30 * lv, "ShearX": lambda lv: 0.3 * lv, "ShearY": lambda lv: 0.3 * lv,
    "TranslateX": lambda lv: 0.45 * lv, "TranslateY": lambda lv: 0.45 * lv,
    "Posterize": lambda lv: (4 * lv).floor(), "Solarize": lambda lv: (256 * lv).floor(),
    "SolarizeAdd": lambda lv: (110 * lv).floor(), "Color": _enhance, "Contrast": _enhance, "Brightness": _enhance,
    "Sharpness": _enhance,
}  # fmt: skip


def randaug_photometric(rgb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """RandAugment's photometric ops of each view, in op order, on RGB (B, 3, H, W) in [0, 1]."""
    p, out = params.to(device=rgb.device, dtype=torch.float64), rgb.clone()
    for k in range((p.shape[1] - BASE) // 3):
        op, level = p[:, BASE + 3 * k], p[:, BASE + 3 * k + 1] / 10
        for name, fn in PHOTOMETRIC.items():
            sel = op == OPS.index(name)
            if sel.any():
                out[sel] = fn(out[sel].clamp(0, 1), ARGS[name](level[sel]).float())
    return out


def color_jitter(rgb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Brightness, then contrast and saturation (one factor for both), on RGB (B, 3, H, W) in [0, 1], clamped."""
    p = params.to(device=rgb.device, dtype=torch.float32)
    rgb = rgb * _col(p[:, 5])
    gray, c = _gray(rgb), _col(p[:, 6])
    rgb = (rgb - gray.mean((2, 3), keepdim=True)) * c + gray.mean((2, 3), keepdim=True)  # contrast
    return (gray + (rgb - gray) * c).clamp(0, 1)  # saturation


def apply_view(x: torch.Tensor, modality: str, params: torch.Tensor) -> torch.Tensor:
    """A view of a batch of (B, C, H, W) maps by the modality's `ModalitySpec.view` (others pass unchanged)."""
    view = modalities.spec(modality).view
    if view is None or x.ndim != 4:
        return x
    return modalities.resolve(view)(x, params)


def geometry_view(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The view's shared geometry on spatial maps (depth, thermal), aligned with the paired image's."""
    return warp(x, params)


def rgb_view(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The shared geometry, then on CLIP-normalised RGB RandAugment's photometric ops and colour jitter
    (de-normalised to [0, 1], clamped, renormalised)."""
    x = warp(x, params)
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    rgb = color_jitter(randaug_photometric(x.float() * std + mean, params), params)
    return ((rgb - mean) / std).to(x.dtype)


def mask_step(x: torch.Tensor, pair: Any, seeds: np.ndarray) -> torch.Tensor:
    """Per-step audio augmentation: frequency masking of `pair.freq_mask` bins (0: off)."""
    return freq_mask(x, pair.freq_mask, seeds) if pair.freq_mask else x


def erase_step(x: torch.Tensor, pair: Any, seeds: np.ndarray) -> torch.Tensor:
    """Per-step augmentation of depth/thermal maps: random erasing with probability `pair.erase` (0: off)."""
    return random_erase(x, pair.erase, seeds) if pair.erase else x


def freq_mask(x: torch.Tensor, width: int, seeds: np.ndarray) -> torch.Tensor:
    """SpecAugment frequency masking: per item, zero a random band of [0, width) mel bins. x: (..., mel, frames)
    with the batch first; item b's band is a pure function of the int row `seeds[b]`."""
    if width <= 0:
        return x
    mel, out = x.shape[-2], x.clone()
    for b, row in enumerate(seeds):
        rng = np.random.default_rng([int(v) for v in row])
        f = int(rng.integers(0, width))
        f0 = int(rng.integers(0, mel - f + 1))
        out[b, ..., f0 : f0 + f, :] = 0.0
    return out


def random_erase(x: torch.Tensor, p: float, seeds: np.ndarray) -> torch.Tensor:
    """With probability p per item, fill a random rectangle (2-33% of the area, aspect 0.3-3.3) with N(0, 1)
    noise. x: (B, C, H, W); item b's draw is a pure function of the int row `seeds[b]`."""
    if p <= 0 or x.ndim != 4:
        return x
    _, C, H, W = x.shape
    out = x.clone()
    for b, row in enumerate(seeds):
        rng = np.random.default_rng([int(v) for v in row])
        if rng.random() >= p:
            continue
        area = rng.uniform(0.02, 1 / 3) * H * W
        ratio = np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3)))
        h = int(np.clip(round(np.sqrt(area * ratio)), 1, H))
        w = int(np.clip(round(np.sqrt(area / ratio)), 1, W))
        y0, x0 = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        noise = torch.from_numpy(rng.standard_normal((C, h, w), dtype=np.float32))
        out[b, :, y0 : y0 + h, x0 : x0 + w] = noise.to(device=x.device, dtype=x.dtype)
    return out
