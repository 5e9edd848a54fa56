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

from bindkit.layers import Block

if TYPE_CHECKING:
    from bindkit.model import Encoder

METHODS = ("value", "value-mlp", "tokens", "local", "crops")


@dataclass
class DenseOutput:
    """The global embedding [B, D] and the per-patch embeddings [B, h, w, D] (both unit norm, float32); cell (i, j)
    covers model pixels [j*stride, j*stride + patch) x [i*stride, i*stride + patch)."""

    embedding: torch.Tensor
    dense: torch.Tensor
    patch: int
    stride: int


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
    encoder.stem.validate(images)
    return h, w


def _value_path(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The last block's attention with each token attending only to itself: out_proj(v(norm1(x))). (N, L, D)."""
    attn = block.attn
    D = x.shape[-1]
    v = F.linear(block.norm1(x), attn.in_proj_weight[2 * D :], attn.in_proj_bias[2 * D :])  # (N, L, D)
    return F.linear(v, attn.out_proj.weight, attn.out_proj.bias)


def window_mask(h: int, w: int, window: int, device: torch.device) -> torch.Tensor:
    """(h*w, 1 + h*w) bool: patch i may see CLS and the patches within `window` // 2 rows and columns of it."""
    r = window // 2
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    near = ((ys[:, None] - ys[None]).abs() <= r) & ((xs[:, None] - xs[None]).abs() <= r)  # (hw, hw)
    return torch.cat([torch.ones(h * w, 1, dtype=torch.bool, device=device), near], 1)


def _local_cls(block: Block, x: torch.Tensor, h: int, w: int, window: int) -> torch.Tensor:
    """The last block's CLS readout repeated per patch, its attention limited to a window around that patch:
    what the CLS token would say about a crop there. (N, 1 + h*w, D) -> (N, h*w, D)."""
    attn, (N, _, D) = block.attn, x.shape
    q, k, v = F.linear(block.norm1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)  # (N, L, D) each
    q = q[:, :1].expand(N, h * w, D)  # the CLS query at every patch
    q, k, v = (t.unflatten(-1, (attn.heads, -1)).transpose(1, 2) for t in (q, k, v))  # (N, H, *, hd)
    mask = window_mask(h, w, window, x.device)  # (hw, L)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, H, hw, hd)
    y = F.linear(y.transpose(1, 2).reshape(N, h * w, D), attn.out_proj.weight, attn.out_proj.bias)
    y = x[:, :1] + y  # the CLS residual
    return y + block.mlp(block.norm2(y))


def _project(encoder: Encoder, tokens: torch.Tensor) -> torch.Tensor:
    """Head norm and projection on every token, unit norm, float32. (N, L, D) -> (N, L, out)."""
    y = F.linear(encoder.head.norm(tokens), encoder.head.proj.weight, None)
    return F.normalize(y.float(), dim=-1)


@torch.no_grad()
def dense_embeddings(encoder: Encoder, images: torch.Tensor, method: str = "value", window: int | None = None,
                     ) -> DenseOutput:  # fmt: skip
    """Images [B, 3, H, W] -> global [B, out] and per-patch [B, h, w, out] embeddings from one forward pass.
    `window` (method "local"): patches per side a readout sees (default: the config's input grid side)."""
    h, w = check_dense_input(encoder, images, method)
    if method == "crops":
        return _crops(encoder, images, window)
    x = images.to(encoder.head.proj.weight.dtype)
    x = encoder.trunk.pre_ln(encoder.stem(x))  # (B, 1 + h*w, D); the stem interpolates positions for other sizes
    blocks: list[Block] = list(encoder.trunk.blocks)
    *early, last = blocks
    for blk in early:
        x = blk(x)
    out = last(x)  # (B, L, D): the ordinary last block, for the global embedding
    embedding = _project(encoder, out[:, :1])[:, 0]  # (B, out)
    if method == "tokens":
        patches = out[:, 1:]
    elif method == "local":
        patches = _local_cls(last, x, h, w, window or encoder.cfg.grid[-1])
    else:
        patches = _value_path(last, x[:, 1:])  # (B, h*w, D)
        if method == "value-mlp":
            patches = x[:, 1:] + patches
            patches = patches + last.mlp(last.norm2(patches))
    dense = _project(encoder, patches).unflatten(1, (h, w))  # (B, h, w, out)
    return DenseOutput(embedding, dense, encoder.cfg.kernel[1], encoder.cfg.stride[1])


def _crops(encoder: Encoder, images: torch.Tensor, window: int | None, batch: int = 256) -> DenseOutput:
    """Sliding crops of the model's input size (`window` px), one patch stride apart, each embedded whole: many
    forward passes, but each crop is seen exactly as the encoder was trained."""
    side = min(window or encoder.cfg.input_shape[-1], *images.shape[-2:])
    step = encoder.cfg.stride[1]
    x = images.to(encoder.head.proj.weight.dtype)
    crops = x.unfold(2, side, step).unfold(3, side, step)  # (B, 3, nh, nw, side, side)
    B, _, nh, nw = crops.shape[:4]
    flat = crops.permute(0, 2, 3, 1, 4, 5).reshape(B * nh * nw, 3, side, side)
    emb = torch.cat([F.normalize(encoder.embed_items(flat[i : i + batch]).float(), dim=-1)
                     for i in range(0, len(flat), batch)])  # fmt: skip
    whole = F.normalize(encoder.embed_items(x).float(), dim=-1)
    return DenseOutput(whole, emb.view(B, nh, nw, -1), side, step)
