"""Thermal images -> `[N, 1, S, S]` float32 in [0, 1] (reference §B.5; the official code has no thermal loader).

The community recipe for LLVIP: a grey "L" image, short side to S with Pillow bicubic, centre crop, divide by 255.
8-bit inputs follow it exactly (3-channel files with equal channels, as LLVIP ships its infrared JPEGs, convert to
the same grey values). 16-bit inputs (radiometric PNG/TIFF) are divided by 65535 and resized as float32 maps with
the same filter. Float arrays are taken as already scaled to [0, 1]. `mean`/`std`, if given, are applied last;
whether the official checkpoint wants any is unknown (a reproducer found none works best, ImageBind PR #73).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from bindkit.data.common import normalize, read_bytes, running_mean_std
from bindkit.data.depth import resize_map
from bindkit.data.errors import ItemError, LoadResult, load_batch
from bindkit.data.images import resize_center_crop
from bindkit.data.limits import check_values, open_picture

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")


def read_thermal(item: Any) -> Image.Image | np.ndarray:
    """An 8-bit thermal image as a PIL "L" image, or a 16-bit/float one as a float32 `[H, W]` map in [0, 1]."""
    if isinstance(item, np.ndarray):
        return _from_array(item)
    if isinstance(item, Image.Image):
        img = item
    else:
        try:
            img = open_picture(read_bytes(item))
            img.load()
        except ItemError:
            raise
        except Exception as e:
            raise ItemError(f"not a readable thermal image ({type(e).__name__}: {e})") from e
    if img.mode in _SIXTEEN_BIT:
        return np.asarray(img, dtype=np.float32) / np.float32(65535)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    return img.convert("L")


def _from_array(a: np.ndarray) -> Image.Image | np.ndarray:
    if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]):
        a = a.reshape(a.shape[1:] if a.shape[0] == 1 else a.shape[:2])
    if a.ndim != 2 or 0 in a.shape:
        raise ItemError(f"thermal arrays must be single-channel (H, W), got shape {a.shape}")
    check_values(a, "thermal array")
    if a.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(a))
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)
    raise ItemError(f"thermal arrays must be uint8, uint16 or float, got {a.dtype}")


def load_thermal_one(item: Any, size: int = 224) -> torch.Tensor:
    """One thermal image -> `[1, size, size]` float32 in [0, 1]."""
    src = read_thermal(item)
    if isinstance(src, Image.Image):
        x = np.asarray(resize_center_crop(src, size), dtype=np.uint8)
        return torch.from_numpy(x.copy()).float().div(255)[None]
    if not np.isfinite(src).all():  # arrays with no finite value at all are refused in _from_array already
        raise ItemError("thermal map contains NaN or inf")
    return torch.from_numpy(resize_map(src, size, "bicubic"))[None]


def load_thermal(
    items: Sequence[Any],
    size: int = 224,
    mean: float | None = None,
    std: float | None = None,
    errors: str = "raise",
    num_workers: int = 0,
) -> torch.Tensor | LoadResult:
    """Thermal images -> `[N, 1, size, size]` float32 in [0, 1], then `(x - mean) / std` if given."""

    def one(i: int, item: Any) -> torch.Tensor:
        return normalize(load_thermal_one(item, size), mean, std)

    return load_batch(items, one, "thermal", (1, size, size), errors, num_workers)


def fit_normalization(tensors: torch.Tensor | Iterable[torch.Tensor]) -> dict[str, float]:
    """Mean and std over every pixel of un-normalised thermal batches, for the config's `preprocess` dict."""
    return running_mean_std(tensors, channel_dim=None)
