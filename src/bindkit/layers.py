"""Small typed building blocks, plain PyTorch: attention (SDPA, optional learned extra key/value), MLP, drop-path.

These are the modules training and export see. CPU inference speed-ups (fused oneDNN linears, packed weights,
matmul-softmax attention) live in `bindkit.runtime.cpu` and are swapped in by `ImageBind.pack_for_cpu()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention with PyTorch's packed q/k/v projection layout.

    `bias_kv` appends one learned key and value token after the input projection (the official audio, depth, thermal
    and IMU trunks do), so queries stay L while keys/values become L+1.
    """

    def __init__(self, dim: int, heads: int, bias_kv: bool = False, causal: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads, self.causal = heads, causal
        # Registration order follows the official checkpoint's key order.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))  # rows [q; k; v]
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.bias_k = nn.Parameter(torch.zeros(1, 1, dim)) if bias_kv else None
        self.bias_v = nn.Parameter(torch.zeros(1, 1, dim)) if bias_kv else None
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.split_heads(F.linear(x, self.in_proj_weight, self.in_proj_bias))  # (B, H, L[+1], hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)  # (B, H, L, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, L, D))

    def split_heads(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, L, 3D) packed projections -> q (B, H, L, hd) and k, v (B, H, L or L+1, hd) with the learned bias k/v."""
        q, k, v = qkv.chunk(3, dim=-1)  # (B, L, D) each
        if self.bias_k is not None and self.bias_v is not None:
            B, _, D = k.shape
            k = torch.cat([k, self.bias_k.to(k.dtype).expand(B, 1, D)], dim=1)  # (B, L+1, D)
            v = torch.cat([v, self.bias_v.to(v.dtype).expand(B, 1, D)], dim=1)
        return tuple(t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))


class MLP(nn.Module):
    """Linear, exact (erf) GELU, Linear."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample with probability `p` (training only)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(Attn(LN(x))); x + DropPath(MLP(LN(x))). LN eps 1e-6, no layer-scale."""

    def __init__(self, dim: int, heads: int, hidden: int, drop_path: float, bias_kv: bool, causal: bool):
        super().__init__()
        self.attn = Attention(dim, heads, bias_kv=bias_kv, causal=causal)
        self.drop_path = DropPath(drop_path)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, hidden)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))
