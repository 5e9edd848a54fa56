"""Single-channel 2-D stems (audio spectrograms, depth, thermal): Conv2d without bias, LayerNorm, CLS, pos-embed."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from bindkit.config import EncoderConfig
from bindkit.modalities.common import TokenPrefix, check_float, check_shape


class Patch2dStem(nn.Module):
    """Conv2d(1 -> D, kernel, stride) -> (N, P, D) -> LayerNorm (eps 1e-5) -> CLS + positional embedding."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Conv2d(1, cfg.width, kernel_size=cast(tuple[int, int], cfg.kernel),  # config: 2-D pairs
                              stride=cast(tuple[int, int], cfg.stride), bias=False)  # fmt: skip
        self.norm = nn.LayerNorm(cfg.width, eps=1e-5)
        # Audio's 12x19 grid is not square, so only depth/thermal may change resolution.
        self.prefix = TokenPrefix(cfg, resizable=cfg.modality != "audio")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, L, D)."""
        y = self.proj(x).flatten(2).transpose(1, 2)  # (N, P, D), row-major over the grid
        return self.prefix(self.norm(y))

    def validate(self, x: torch.Tensor) -> None:
        """Audio: [B,1,mel,frames] or [B,S,1,mel,frames] with the configured sizes; depth/thermal: [B,1,H,W]."""
        c = self.cfg
        if c.modality == "audio":
            ok = x.ndim in (4, 5) and tuple(x.shape[-3:]) == tuple(c.input_shape)
            check_shape(x, c, f"[B,S,{','.join(map(str, c.input_shape))}] or [B,{','.join(map(str, c.input_shape))}]",
                        ok)  # fmt: skip
        else:
            ok = x.ndim in (4, 5) and x.shape[-3] == 1 and min(x.shape[-2:]) >= c.kernel[0]
            check_shape(x, c, "[B,1,H,W] (or [B,S,1,H,W])", ok)
        check_float(x, c)
