"""Depth maps -> disparity `[N, 1, S, S]` float32 (reference §B.5; the official code has no depth loader).

ImageBind's depth encoder was trained on single-channel *disparity* (Omnivore's convention):
`disparity = baseline * focal / depth`, with depth in metres, the baseline in metres and the focal length in pixels,
so disparity is in pixels. Missing depth (0, negative, NaN, inf) becomes disparity 0. Depth outside the valid range
is clamped into it (`out_of_range="clip"`, the SUN RGB-D toolbox convention) or marked missing (`"zero"`). The two
community recipes are the presets: `"imagebind_issue134"` clamps at 8 m, `"omnivore"` keeps 0.01-50 m.
The map is then resized (short side to S, bilinear by default) and centre-cropped, and optionally normalised.

Inputs: 16-bit PNG in millimetres (`encoding="auto"` or `"mm"`), SUN RGB-D's bit-rotated PNGs (`"sunrgbd"`: the
stored value is the millimetre value rotated left by 3 bits), float metres in `.npy`/`.npz` (`"auto"` or `"m"`),
ready-made disparity (`"disparity"`), or the same as in-memory numpy arrays or PIL images (integer dtype or modes
I;16/I/L = stored units, float or mode F = metres; a PIL image of a PNG gives what the PNG's path gives). Integer
maps are multiplied by `depth_scale` (metres per unit, 0.001 for millimetres).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bindkit.data.common import (
    as_list,
    center_crop_offsets,
    normalize,
    read_bytes,
    running_mean_std,
    short_side_resize,
)
from bindkit.data.errors import ItemError, LoadResult, check_items, load_batch
from bindkit.data.limits import check_resize, check_values, load_array, open_picture

PRESETS = {
    "imagebind_issue134": {"min_depth": 0.0, "max_depth": 8.0},  # SUN RGB-D toolbox: clamp beyond 8 m
    "omnivore": {"min_depth": 0.01, "max_depth": 50.0},  # Omnivore issue #12
}
KINECT_BASELINE = 0.075  # metres, Kinect v1/v2 (SUN RGB-D kv1/kv2); RealSense / Xtion: 0.095
NYU_FOCAL = 518.857901  # pixels, fx of the Kinect v1 (NYU) intrinsics in SUN RGB-D
# Reported in ImageBind issue #107 for the official checkpoint. Community finding, unverified: its size (~0.04)
# matches disparity computed from depth in millimetres rather than metres, so check it against your own data.
COMMUNITY_NORMALIZATION = {"mean": 0.0418, "std": 0.0295}
ENCODINGS = ("auto", "mm", "sunrgbd", "m", "disparity")
IMAGE_MODES = ("I;16", "I;16B", "I;16L", "I", "L", "F")  # single-channel PIL modes: 16/32-bit, 8-bit, float
RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC}  # fmt: skip


def sunrgbd_decode(raw: np.ndarray) -> np.ndarray:
    """SUN RGB-D stored PNG values -> millimetres: a 16-bit rotate right by 3, `(d >> 3) | (d << 13)`."""
    d = raw.astype(np.uint16)
    return (d >> 3) | (d << 13)


def sunrgbd_focal(intrinsics_path: str | Path) -> float:
    """fx (pixels) from a SUN RGB-D `intrinsics.txt` (3x3 K, row-major)."""
    k = np.loadtxt(intrinsics_path).reshape(-1)
    if k.size != 9:
        raise ValueError(f"{intrinsics_path}: expected 9 numbers (3x3 K), found {k.size}")
    return float(k[0])


def _read_array(item: Any) -> np.ndarray:
    """The stored 2-D map of a path/bytes/array/PIL image, in its stored dtype."""
    if isinstance(item, np.ndarray):
        a = item
    elif isinstance(item, Image.Image):
        a = _image_values(item)
    else:
        data = read_bytes(item)  # .npy / .npz are recognised by their magic bytes, whatever the name
        a = _read_numpy(data) if data.startswith((b"\x93NUMPY", b"PK\x03\x04")) else _read_image(data)
    if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]):
        a = a.reshape(a.shape[1:] if a.shape[0] == 1 else a.shape[:2])
    if a.ndim != 2 or 0 in a.shape:
        raise ItemError(f"expected a 2-D depth map (H, W), got shape {a.shape}")
    check_values(a, "depth map")  # no complex/boolean maps, and at least one finite value
    return a


def _read_numpy(data: bytes) -> np.ndarray:
    def pick(keys: list[str]) -> tuple[str, tuple[str, ...]]:
        if len(keys) != 1 and "depth" not in keys:
            raise ItemError(f".npz needs a single array or a 'depth' array, found {keys}")
        return ("depth" if "depth" in keys else keys[0]), ()

    return load_array(data, pick)[0]  # headers checked against Limits.max_array_bytes before loading


def _read_image(data: bytes) -> np.ndarray:
    try:
        img = open_picture(data)  # header checked against Limits.max_pixels before decoding
        img.load()
    except ItemError:
        raise
    except Exception as e:
        raise ItemError(f"not a readable depth image ({type(e).__name__}: {e})") from e
    return _image_values(img)


def _image_values(img: Image.Image) -> np.ndarray:
    """The stored values of a single-channel image (integer modes: stored units, "F": metres), as a file's."""
    if img.mode not in IMAGE_MODES:
        raise ItemError(
            f"depth images must be single-channel (modes {', '.join(IMAGE_MODES)}), got mode {img.mode}"
        )
    try:
        return np.array(img)  # loads a lazily opened image: its decoding errors surface here
    except Exception as e:
        raise ItemError(f"not a readable depth image ({type(e).__name__}: {e})") from e


def read_depth(item: Any, encoding: str = "auto", depth_scale: float = 0.001) -> np.ndarray:
    """A depth map in metres, float32 `[H, W]` (or disparity as stored, for `encoding="disparity"`)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    a = _read_array(item)
    integer = np.issubdtype(a.dtype, np.integer)
    if encoding == "sunrgbd":
        if not integer:
            raise ItemError(f"SUN RGB-D depth must be 16-bit integers, got {a.dtype}")
        return sunrgbd_decode(a).astype(np.float32) * np.float32(depth_scale)
    if encoding == "mm" and not integer:
        raise ItemError(f"millimetre depth must be integers, got {a.dtype}")
    if encoding == "m" and integer:
        raise ItemError(f"metre depth must be floats, got {a.dtype}")
    if encoding == "disparity":
        return a.astype(np.float32)
    return a.astype(np.float32) * np.float32(depth_scale) if integer else a.astype(np.float32)


def depth_to_disparity(
    depth: np.ndarray,
    focal_length: float = NYU_FOCAL,
    baseline: float = KINECT_BASELINE,
    min_depth: float = 0.0,
    max_depth: float = float("inf"),
    out_of_range: str = "clip",
) -> np.ndarray:
    """Depth (metres) -> disparity `baseline * focal / depth` (pixels); missing or rejected depth -> 0."""
    if out_of_range not in ("clip", "zero"):
        raise ValueError(f"out_of_range must be 'clip' or 'zero', got {out_of_range!r}")
    d = depth.astype(np.float64)
    valid = np.isfinite(d) & (d > 0)
    if out_of_range == "clip":
        d = np.clip(d, max(min_depth, np.finfo(np.float64).tiny), max_depth)
    else:
        valid &= (d >= min_depth) & (d <= max_depth)
    disp = np.zeros_like(d)
    disp[valid] = baseline * focal_length / d[valid]
    return disp.astype(np.float32)


def resize_map(x: np.ndarray, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """A float `[H, W]` map: short side to `size` (Pillow, antialiased), then the centred `size` x `size` crop."""
    check_resize(x.shape[1], x.shape[0], size)
    img = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32))
    w, h = short_side_resize(*img.size, size)
    if (w, h) != img.size:
        img = img.resize((w, h), RESAMPLE[interpolation])
    left, top = center_crop_offsets(w, h, size)
    return np.array(img.crop((left, top, left + size, top + size)), dtype=np.float32)


def load_depth(
    items: Sequence[Any],
    focal_length: float | Sequence[float] = NYU_FOCAL,
    baseline: float | Sequence[float] = KINECT_BASELINE,
    preset: str | None = "imagebind_issue134",
    min_depth: float | None = None,
    max_depth: float | None = None,
    out_of_range: str = "clip",
    encoding: str = "auto",
    depth_scale: float = 0.001,
    size: int = 224,
    interpolation: str = "bilinear",
    mean: float | None = None,
    std: float | None = None,
    errors: str = "raise",
    num_workers: int = 0,
) -> torch.Tensor | LoadResult:
    """Depth maps -> disparity `[N, 1, size, size]` float32; see the module docstring for units and options."""
    check_items(items, "depth")
    rng = {"min_depth": 0.0, "max_depth": float("inf")} if preset is None else dict(PRESETS[preset])
    rng.update({k: v for k, v in (("min_depth", min_depth), ("max_depth", max_depth)) if v is not None})
    if interpolation not in RESAMPLE:
        raise ValueError(f"interpolation must be one of {list(RESAMPLE)}, got {interpolation!r}")
    focals, baselines = (
        as_list(focal_length, len(items), "focal_length"),
        as_list(baseline, len(items), "baseline"),
    )

    def one(i: int, item: Any) -> torch.Tensor:
        d = read_depth(item, encoding, depth_scale)
        if encoding != "disparity":
            d = depth_to_disparity(d, focals[i], baselines[i], out_of_range=out_of_range, **rng)
        x = torch.from_numpy(resize_map(d, size, interpolation))[None]  # (1, S, S)
        return normalize(x, mean, std)

    return load_batch(items, one, "depth", (1, size, size), errors, num_workers)


def fit_normalization(tensors: torch.Tensor | Iterable[torch.Tensor]) -> dict[str, float]:
    """Mean and std over every pixel of un-normalised depth batches, for the config's `preprocess` dict."""
    return running_mean_std(tensors, channel_dim=None)
