"""One transformer trunk for every modality (the official `SimpleTransformer`, batch-first)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from bindkit.config import EncoderConfig
from bindkit.layers import Block

if TYPE_CHECKING:

    class BlockList(nn.ModuleList):
        """What `Trunk.blocks` holds, for the type checker: an `nn.ModuleList` of `Block`s."""

        def __iter__(self) -> Iterator[Block]: ...


class Trunk(nn.Module):
    """Optional pre-LayerNorm (vision), then `depth` blocks; no final LayerNorm (the head's LN plays that role)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        hidden = int(cfg.width * cfg.mlp_ratio)
        rates = [
            cfg.drop_path * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)
        ]  # linspace(0, rate, depth)
        self.pre_ln = nn.LayerNorm(cfg.width, eps=1e-6) if cfg.pre_ln else nn.Identity()
        self.blocks = cast("BlockList", nn.ModuleList(  # nn.ModuleList is untyped: its items are Blocks
            Block(cfg.width, cfg.heads, hidden, r, bias_kv=cfg.bias_kv, causal=cfg.causal) for r in rates
        ))
        self.grad_checkpointing = False  # set by the trainer to trade compute for activation memory

    def forward(self, x: torch.Tensor, keep: list[torch.Tensor] | None = None) -> torch.Tensor:
        """(N, L, D) -> (N, L, D). If `keep` is a list, the pre-LN output and each block's output are appended."""
        x = self.pre_ln(x)
        if keep is not None and not isinstance(self.pre_ln, nn.Identity):
            keep.append(x)
        for blk in self.blocks:
            if self.grad_checkpointing and self.training:
                x = checkpoint(blk, x, use_reentrant=False)
            else:
                x = blk(x)
            if keep is not None:
                keep.append(x)
        return x
