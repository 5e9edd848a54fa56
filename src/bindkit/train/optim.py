"""Optimizer pieces: AdamW parameter groups per trained encoder, warm-up + cosine schedule, from-scratch init."""

from __future__ import annotations

import math

import torch
from torch import nn

from bindkit.modalities.text import TextStem
from bindkit.model import Encoder, ImageBind

NO_DECAY = ("pos_embed", "cls_token", "bias_k", "bias_v", "log_scale")


def param_groups(model: ImageBind, settings: dict[str, tuple[float, float]]) -> list[dict]:
    """Two AdamW groups per trained encoder (`settings`: modality -> (peak lr, weight decay)): weight matrices
    with decay; biases, norms, positional embeddings, tokens and logit scales without."""
    groups = []
    for m, (lr, wd) in settings.items():
        decay: list[nn.Parameter] = []
        plain: list[nn.Parameter] = []
        for name, p in model.encoders[m].named_parameters():
            if p.requires_grad:
                (plain if p.ndim < 2 or any(s in name for s in NO_DECAY) else decay).append(p)
        for kind, params, w in (("decay", decay, wd), ("no_decay", plain, 0.0)):
            if params:
                groups.append(
                    {"params": params, "lr": lr, "peak_lr": lr, "weight_decay": w, "name": f"{m}/{kind}"}
                )
    return groups


def lr_factor(step: int, total: int, warmup: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak LR at `step` (0-based): linear warm-up over `warmup` steps, then cosine to
    `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    """Scale every group's peak LR by `factor`."""
    for g in optimizer.param_groups:
        g["lr"] = g["peak_lr"] * factor


@torch.no_grad()
def init_encoder(enc: Encoder) -> None:
    """The official random initialisation (reference §A.8) for an encoder trained from scratch."""
    m, width = enc.cfg.modality, enc.cfg.width
    prefix = getattr(enc.stem, "prefix", None)
    if m == "text":
        assert isinstance(enc.stem, TextStem)  # model.STEMS["text"]
        nn.init.normal_(enc.stem.token_embedding.weight, std=0.02)
        nn.init.normal_(enc.stem.pos_embed, std=0.01)
    elif prefix is not None:
        prefix.cls_token.normal_().mul_(width**-0.5)
        if m == "imu":
            nn.init.normal_(prefix.pos_embed, std=0.01)
        else:
            prefix.pos_embed.normal_().mul_(width**-0.5)
    for blk in enc.trunk.blocks:
        for lin in (blk.mlp.fc1, blk.mlp.fc2, blk.attn.out_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(blk.attn.in_proj_weight)
        nn.init.zeros_(blk.attn.in_proj_bias)
        for t in (blk.attn.bias_k, blk.attn.bias_v):
            if t is not None:
                nn.init.xavier_normal_(t)


def set_drop_path(enc: Encoder, rate: float) -> None:
    """Stochastic depth on a trunk: block i drops its branches with rate * i / (depth - 1) (linspace 0 -> rate)."""
    blocks = enc.trunk.blocks
    for i, blk in enumerate(blocks):
        blk.drop_path.p = rate * i / max(len(blocks) - 1, 1)
