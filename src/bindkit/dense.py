"""Dense joint-space embeddings: one embedding per image patch from a vision encoder, with no training.

The global embedding is the CLS token after the last block, through the head's LayerNorm and projection. A patch
token after the last block has mixed in the whole image through attention, so its projection says little about
*where* a thing is. MaskCLIP (Zhou et al., ECCV 2022) keeps the last block's *value* path instead: each patch's
value vector, through the attention output projection, then the head's norm and projection. Measured on the digits
scenes (docs/applications.md, `bindkit.demo.apps_locate`), this "value" method points at the queried digit far more
often than the last block's patch tokens ("tokens"); "value-mlp" (value path plus residual and MLP) is kept for
comparison. Everything comes from the same forward pass that yields the global embedding, so a dense map costs
a few per-token matrix products on top of one `encode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from bindkit.layers import Block, linear

if TYPE_CHECKING:
    from bindkit.model import Encoder

METHODS = ("value", "value-mlp", "tokens")


@dataclass
class DenseOutput:
    """The global embedding [B, D] and the per-patch embeddings [B, h, w, D] (both unit norm, float32)."""

    embedding: torch.Tensor
    dense: torch.Tensor


def check_dense_input(encoder: Encoder | Any, images: torch.Tensor, method: str = "value") -> tuple[int, int]:
    """Reject what `dense_embeddings` cannot use, before any compute; returns the patch grid (h, w)."""
    cfg = getattr(encoder, "cfg", None)
    if cfg is None or cfg.modality != "vision":
        name = cfg.modality if cfg is not None else type(encoder).__name__
        raise ValueError(f"encode_dense needs a vision encoder, got {name!r}")
    if method not in METHODS:
        raise ValueError(f"encode_dense: method must be one of {METHODS}, got {method!r}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"encode_dense: expected images [B, 3, H, W], got {shape}")
    p, s = cfg.kernel[1], cfg.stride[1]
    H, W = images.shape[-2:]
    if H < p or W < p:
        raise ValueError(f"encode_dense: image {H}x{W} is smaller than one {p}x{p} patch")
    h, w = (H - p) // s + 1, (W - p) // s + 1
    if h != w:
        raise ValueError(f"encode_dense: images must give a square patch grid, {H}x{W} gives {h}x{w}")
    encoder.stem.validate(images)  # type: ignore[operator]
    return h, w


def _value_path(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The last block's attention with each token attending only to itself: out_proj(v(norm1(x))). (N, L, D)."""
    attn = block.attn
    D = x.shape[-1]
    v = linear(block.norm1(x), attn.in_proj_weight[2 * D :], attn.in_proj_bias[2 * D :])  # (N, L, D)
    return linear(v, attn.out_proj.weight, attn.out_proj.bias)


def _project(encoder: Encoder, tokens: torch.Tensor) -> torch.Tensor:
    """Head norm and projection on every token, unit norm, float32. (N, L, D) -> (N, L, out)."""
    y = linear(encoder.head.norm(tokens), encoder.head.proj.weight, None)
    return F.normalize(y.float(), dim=-1)


@torch.no_grad()
def dense_embeddings(encoder: Encoder, images: torch.Tensor, method: str = "value") -> DenseOutput:
    """Images [B, 3, H, W] -> global [B, out] and per-patch [B, h, w, out] embeddings from one forward pass."""
    h, w = check_dense_input(encoder, images, method)
    x = images.to(encoder.head.proj.weight.dtype)
    x = encoder.trunk.pre_ln(encoder.stem(x))  # (B, 1 + h*w, D); the stem interpolates positions for other sizes
    blocks: list[Block] = list(encoder.trunk.blocks)  # type: ignore[arg-type]
    *early, last = blocks
    for blk in early:
        x = blk(x)
    out = last(x)  # (B, L, D): the ordinary last block, for the global embedding
    embedding = _project(encoder, out[:, :1])[:, 0]  # (B, out)
    if method == "tokens":
        patches = out[:, 1:]
    else:
        patches = _value_path(last, x[:, 1:])  # (B, h*w, D)
        if method == "value-mlp":
            patches = x[:, 1:] + patches
            patches = patches + last.mlp(last.norm2(patches))
    dense = _project(encoder, patches).unflatten(1, (h, w))  # (B, h, w, out)
    return DenseOutput(embedding, dense)
