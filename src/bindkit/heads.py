"""Heads (LayerNorm, token selection, bias-free projection) and postprocessors (L2 normalise, logit scale)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bindkit.config import EncoderConfig

MAX_LOGIT_SCALE = 100.0


class Head(nn.Module):
    """Select one token (CLS at 0, or text's EOT position), LayerNorm it, optional dropout, project to out_dim."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.drop = nn.Dropout(cfg.head_dropout)
        self.proj = nn.Linear(cfg.width, cfg.out_dim, bias=False)

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        """(N, L, D) -> (N, out). LN is per token, so selecting first is exact and cheaper than LN over all tokens."""
        tok = x[:, 0] if index is None else x[torch.arange(x.shape[0], device=x.device), index]  # (N, D)
        return self.proj(self.drop(self.norm(tok)))


class Postprocess(nn.Module):
    """L2 normalisation, then multiplication by min(exp(log_scale), 100) when the modality has a scale."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.has_scale = cfg.scale is not None
        if cfg.scale is None:
            return
        log_scale = torch.tensor(math.log(cfg.scale), dtype=torch.float32)
        if cfg.learnable_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    @property
    def scale(self) -> torch.Tensor:
        """The multiplier applied after normalisation (1 for vision)."""
        if not self.has_scale:
            return torch.ones(())
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(x, dim=-1)
        return x * self.scale.to(x.dtype) if self.has_scale else x
