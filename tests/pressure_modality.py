"""A toy seventh modality, whole in one file: a 1-D pressure signal (.npy or one-column .csv).

It is what adding a modality takes: a stem, a loader, a normalisation fitter and a `ModalitySpec`; registering the
spec (`bindkit.modalities.register(PRESSURE)`) makes it known to the model, loaders, store, trainer and service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bindkit.config import EncoderConfig
from bindkit.data.errors import ItemError, LoadResult, load_batch
from bindkit.modalities import ModalitySpec
from bindkit.modalities.common import ConfigStem, TokenPrefix, check_float, check_shape, series_length


class PressureStem(ConfigStem):
    """Conv1d(1 -> D, kernel = stride = k, no bias) over (N, 1, T), LayerNorm, CLS and positional embedding."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__(cfg)
        self.proj = nn.Conv1d(1, cfg.width, kernel_size=cfg.kernel[0], stride=cfg.stride[0], bias=False)
        self.norm = nn.LayerNorm(cfg.width, eps=1e-5)
        self.prefix = TokenPrefix(cfg, resizable=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, T) -> (N, T/k + 1, D)."""
        return self.prefix(self.norm(self.proj(x).transpose(1, 2)))

    def validate(self, x: torch.Tensor) -> None:
        """Exactly [B, 1, length]."""
        n = self.cfg.input_shape[-1]
        check_shape(x, self.cfg, f"[B,1,{n}]", x.ndim == 3 and x.shape[1] == 1 and x.shape[2] == n)
        check_float(x, self.cfg)


def read_pressure(path: Path) -> np.ndarray:
    """A 1-D float series from a .npy or a one-column .csv (a header line is allowed)."""
    if Path(path).suffix.lower() == ".npy":
        x = np.load(path, allow_pickle=False)
    else:
        x = np.genfromtxt(path, delimiter=",", skip_header=int(not _numeric(Path(path))))
    x = np.asarray(x, dtype=np.float64).reshape(-1) if np.ndim(x) <= 1 else x
    if x.ndim != 1 or len(x) < 2 or not np.isfinite(x).all():
        raise ItemError(f"not a finite 1-D series of 2 or more samples (shape {np.shape(x)})")
    return x


def _numeric(path: Path) -> bool:
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip()
    try:
        float(first)
        return True
    except ValueError:
        return False


def load_pressure(items: Sequence[Any], length: int = 64, mean: float = 0.0, std: float = 1.0,
                  errors: str = "raise") -> torch.Tensor | LoadResult:  # fmt: skip
    """Pressure files -> [N, 1, length] float32: linearly resampled to `length` samples, then (x - mean) / std."""

    def one(i: int, item: Any) -> torch.Tensor:
        x = read_pressure(item)
        y = np.interp(np.linspace(0, len(x) - 1, length), np.arange(len(x)), x)
        return torch.from_numpy(((y - mean) / std).astype(np.float32))[None]

    return load_batch(items, one, "pressure", (1, length), errors)


def fit_pressure(batches: torch.Tensor | Iterable[torch.Tensor]) -> dict[str, float]:
    """Mean and std over every sample of un-normalised [N, 1, T] batches."""
    x = torch.cat([b.reshape(-1).double() for b in ([batches] if torch.is_tensor(batches) else batches)])
    return {"mean": float(x.mean()), "std": float(x.std(correction=0))}


def is_pressure_array(path: Path) -> bool:
    """A 1-D numpy array."""
    return Path(path).suffix.lower() == ".npy" and np.load(path, mmap_mode="r", allow_pickle=False).ndim == 1


PRESSURE = ModalitySpec(
    name="pressure", encoder="pressure", stem=PressureStem, loader=load_pressure, sizes=series_length,
    extensions=(".npy", ".csv"), hints=("pressure", "barometer"), sniff=is_pressure_array, fitter=fit_pressure,
    thumbnail="bindkit.serve.thumbs:series_plot",
)  # fmt: skip


def pressure_encoder(out_dim: int, length: int = 64) -> EncoderConfig:
    """The config entry of a small pressure encoder (8-sample patches: length/8 tokens and a CLS token)."""
    return EncoderConfig("pressure", width=32, depth=2, heads=2, out_dim=out_dim, bias_kv=True, scale=5.0,
                         input_shape=(1, length), kernel=(8,), stride=(8,))  # fmt: skip
