"""Helpers shared by the loaders: reading raw inputs, resize/crop geometry, normalisation statistics."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from bindkit.data.errors import ItemError
from bindkit.data.limits import check_bytes, read_file, read_stream

PathLike = str | Path


def read_bytes(item: Any) -> bytes:
    """The raw bytes of a path, bytes-like object or binary file object; clear errors for missing/empty input."""
    if isinstance(item, (str, Path)):
        data = read_file(item)  # regular files only, size-capped (bindkit.data.limits)
    elif isinstance(item, (bytes, bytearray, memoryview)):
        check_bytes(len(item) if not isinstance(item, memoryview) else item.nbytes)
        data = bytes(item)
    elif hasattr(item, "read"):
        data = read_stream(item)
        if not isinstance(data, bytes):
            raise ItemError("file object must be opened in binary mode")
    else:
        raise ItemError(f"unsupported input type {type(item).__name__}")
    if len(data) == 0:
        raise ItemError("empty input (0 bytes)")
    return data


def as_file(item: Any) -> BinaryIO:
    """A seekable binary stream over a path / bytes / file object (read fully, so errors surface here)."""
    return io.BytesIO(read_bytes(item))


def suffix(item: Any) -> str:
    """Lower-case file extension of a path item ('' for in-memory data)."""
    if isinstance(item, (str, Path)):
        return Path(item).suffix.lower()
    name = getattr(item, "name", None)
    return Path(name).suffix.lower() if isinstance(name, str) else ""


def short_side_resize(w: int, h: int, size: int) -> tuple[int, int]:
    """(new_w, new_h) with the short side at `size` and the long side `int(size * long / short)`."""
    if w <= h:
        return size, int(size * h / w)
    return int(size * w / h), size


def center_crop_offsets(w: int, h: int, size: int) -> tuple[int, int]:
    """(left, top) of a centred size x size crop; Python's round (half to even), as torchvision's CenterCrop."""
    return int(round((w - size) / 2.0)), int(round((h - size) / 2.0))


def normalize(
    x: torch.Tensor, mean: float | Sequence[float] | None, std: float | Sequence[float] | None
) -> torch.Tensor:
    """(x - mean) / std over dim 0 (channels) of a (C, ...) tensor; a no-op when both are None."""
    if mean is None and std is None:
        return x
    if mean is None or std is None:
        raise ValueError("give both mean and std, or neither")
    shape = (-1,) + (1,) * (x.dim() - 1)
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(shape)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(shape)
    if (s <= 0).any():
        raise ValueError(f"std must be positive, got {std}")
    return (x - m) / s


def as_list(value: Any, n: int, name: str) -> list[Any]:
    """Broadcast a scalar per-batch setting to one value per item, or check a per-item sequence's length."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != n:
            raise ValueError(f"{name} has {len(value)} values for {n} items")
        return list(value)
    return [value] * n


def running_mean_std(
    tensors: torch.Tensor | Iterable[torch.Tensor], channel_dim: int | None
) -> dict[str, Any]:
    """Mean and std over every value (channel_dim=None) or per channel, streaming in float64 (Chan's merge)."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    count, mean, m2 = 0, None, None
    for t in tensors:
        x = torch.as_tensor(t).detach().to(torch.float64)
        if channel_dim is None:
            x = x.reshape(1, -1)
        else:  # (C, everything else)
            x = x.movedim(channel_dim, 0).reshape(x.shape[channel_dim], -1)
        n = x.shape[1]
        if n == 0:
            continue
        bm, bm2 = x.mean(1), ((x - x.mean(1, keepdim=True)) ** 2).sum(1)
        if mean is None or m2 is None:  # the first batch (both are set together)
            count, mean, m2 = n, bm, bm2
            continue
        delta, tot = bm - mean, count + n
        mean = mean + delta * n / tot
        m2 = m2 + bm2 + delta**2 * count * n / tot
        count = tot
    if mean is None or m2 is None:
        raise ValueError("fit_normalization got no values")
    std = (m2 / count).sqrt()
    if channel_dim is None:
        return {"mean": float(mean[0]), "std": float(std[0])}
    return {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}
