"""Pieces every patch-based stem shares: CLS token, learnable positional embedding and its interpolation."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bindkit.config import EncoderConfig


class ConfigStem(nn.Module):
    """Base of the built-in stems (`Stem` protocol): holds the encoder config; its token grid is the config's."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg

    @property
    def grid(self) -> tuple[int, ...]:
        """The token grid for the configured input (without the CLS token)."""
        return self.cfg.grid


def square_size(enc: EncoderConfig) -> dict[str, Any]:
    """Loader options for square pictures: the side of `input_shape`."""
    return {"size": enc.input_shape[-1]}


def series_length(enc: EncoderConfig) -> dict[str, Any]:
    """Loader options for (channels, length) series: the length."""
    return {"length": enc.input_shape[-1]}


class TokenPrefix(nn.Module):
    """Prepend a CLS token and add a learnable positional embedding (bicubic-resized for other square grids)."""

    def __init__(self, cfg: EncoderConfig, resizable: bool):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.num_tokens, cfg.width))
        self.resizable = resizable
        self.modality = cfg.modality

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, P, D) patch tokens -> (N, P+1, D)."""
        x = torch.cat([self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_for(x.shape[1]).to(x.dtype)

    def pos_for(self, n_tokens: int) -> torch.Tensor:
        """The positional embedding for `n_tokens` tokens (CLS included), interpolated when the grid differs."""
        pos = self.pos_embed
        if n_tokens == pos.shape[1]:
            return pos
        if not self.resizable:
            raise ValueError(
                f"{self.modality}: got {n_tokens - 1} patches, the model needs exactly {pos.shape[1] - 1}"
            )
        old, new = pos.shape[1] - 1, n_tokens - 1
        side = math.isqrt(old)
        if side * side != old or math.isqrt(new) ** 2 != new:
            raise ValueError(
                f"{self.modality}: cannot resize a {old}-patch positional embedding to {new} patches"
            )
        grid = pos[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)  # (1, D, s, s)
        grid = F.interpolate(grid, scale_factor=math.sqrt(new / old), mode="bicubic")
        grid = grid.permute(0, 2, 3, 1).flatten(1, 2).to(pos.dtype)  # (1, new, D)
        return torch.cat([pos[:, :1], grid], dim=1)


def check_float(x: torch.Tensor, cfg: EncoderConfig) -> None:
    """Reject non-float or non-finite inputs before any compute."""
    if not x.is_floating_point():
        raise TypeError(f"{cfg.modality}: expected a floating-point tensor, got {x.dtype}")
    # One summing pass first (NaN and inf propagate into the sum); the exact element test only when it trips.
    if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{cfg.modality}: input has NaN or infinite values in items {bad}")


def check_shape(x: torch.Tensor, cfg: EncoderConfig, expected: str, ok: bool) -> None:
    """Raise a clear shape error naming the modality and the expected layout."""
    if not ok:
        raise ValueError(f"{cfg.modality}: expected {expected}, got shape {tuple(x.shape)}")
