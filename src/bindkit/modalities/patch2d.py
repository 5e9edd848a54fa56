"""Single-channel 2-D stems (audio spectrograms, depth, thermal): Conv2d without bias, LayerNorm, CLS, pos-embed."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from bindkit.config import EncoderConfig
from bindkit.modalities.common import ConfigStem, TokenPrefix, check_float, check_shape


class Patch2dStem(ConfigStem):
    """Conv2d(1 -> D, kernel, stride) -> (N, P, D) -> LayerNorm (eps 1e-5) -> CLS + positional embedding."""

    # Square maps (depth, thermal) may change resolution: the positional embedding is resized.
    resizable = True

    def __init__(self, cfg: EncoderConfig):
        super().__init__(cfg)
        self.proj = nn.Conv2d(1, cfg.width, kernel_size=cast(tuple[int, int], cfg.kernel),  # config: 2-D pairs
                              stride=cast(tuple[int, int], cfg.stride), bias=False)  # fmt: skip
        self.norm = nn.LayerNorm(cfg.width, eps=1e-5)
        self.prefix = TokenPrefix(cfg, resizable=self.resizable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, L, D)."""
        y = self.proj(x).flatten(2).transpose(1, 2)  # (N, P, D), row-major over the grid
        return self.prefix(self.norm(y))

    def validate(self, x: torch.Tensor) -> None:
        """[B,1,H,W] (or [B,S,1,H,W]) maps at least one kernel wide."""
        c = self.cfg
        ok = x.ndim in (4, 5) and x.shape[-3] == 1 and min(x.shape[-2:]) >= c.kernel[0]
        check_shape(x, c, "[B,1,H,W] (or [B,S,1,H,W])", ok)
        check_float(x, c)
