"""CPU inference fast path, opt-in: `pack_for_cpu(model)` swaps in modules that use fused oneDNN linears on weights
packed once into oneDNN's blocked layout, and the fastest attention kernel for the device, dtype and shape.

The swapped-in modules hold the same Parameters under the same names (state dicts and checkpoints are unchanged);
the packed copies are non-persistent buffers. With gradients on, under autocast, or after a weight changes (an
optimizer step, `load_state_dict`, `.to()`), each module takes the plain path of `bindkit.layers`, so results stay
correct; `pack_for_cpu` again re-packs. `unpack_for_cpu(model)` swaps the plain modules back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from bindkit.layers import MLP, Attention

# Matmul-softmax runs over chunks of items holding about this many scores (bf16: 256 KiB, so they stay in L2).
CHUNK_SCORES = 1 << 17
# The kernel measured fastest per (dtype, B, H, L, S, hd, causal, threads) on CPU inference; filled on first use.
_CHOICE: dict[tuple, str] = {}


@cache
def has_fused_linear() -> bool:
    """Whether this torch build has oneDNN's fused linear op and its weight reorder."""
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise") and \
        hasattr(ops, "_reorder_linear_weight")  # fmt: skip


def matmul_softmax(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """Attention as two GEMMs and a softmax, over chunks of items so each chunk's (n, H, L, S) scores stay in cache.

    Inference only: the scale and the causal mask are applied in place on each chunk's fresh scores (no copies;
    about 1.1-1.2x the out-of-place version on causal text shapes) and the chunks write into one output."""
    B, H, L, hd = q.shape
    S = k.shape[2]
    bias = None
    if causal:  # (L, S): 0 on and below the diagonal, -inf above
        bias = torch.zeros(L, S, dtype=q.dtype, device=q.device).masked_fill_(
            torch.ones(L, S, dtype=torch.bool, device=q.device).triu(1), float("-inf"))  # fmt: skip
    n = max(1, CHUNK_SCORES // (H * L * S))
    out = torch.empty(B, H, L, hd, dtype=q.dtype, device=q.device)
    kt = k.transpose(-1, -2)  # (B, H, hd, S)
    for i in range(0, B, n):
        scores = torch.matmul(q[i : i + n], kt[i : i + n]).mul_(hd**-0.5)  # (n, H, L, S)
        if bias is not None:
            scores.add_(bias)
        torch.matmul(torch.softmax(scores, dim=-1), v[i : i + n], out=out[i : i + n])  # softmax sums in fp32 inside
    return out


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


KERNELS = {"sdpa": _sdpa, "matmul": matmul_softmax}


def _fastest(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> str:
    """Time each kernel three times on these very inputs; the lower median wins (ties: SDPA)."""
    best, best_t = "sdpa", float("inf")
    for name, fn in KERNELS.items():
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn(q, k, v, causal)
            times.append(time.perf_counter() - t)
        if sorted(times)[1] < best_t:
            best, best_t = name, sorted(times)[1]
    return best


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """Softmax attention, (B, H, L, hd) x (B, H, S, hd) -> (B, H, L, hd), through the fastest correct kernel.

    CUDA, gradients and other dtypes take SDPA. CPU fp32/bf16 inference picks between SDPA (PyTorch's CPU flash
    kernel) and `matmul_softmax` by timing both once per shape and thread count, since which wins depends on the
    shape, the threads and the torch build (they agree to float rounding).
    """
    if q.device.type != "cpu" or torch.is_grad_enabled() or q.dtype not in (torch.float32, torch.bfloat16):
        return _sdpa(q, k, v, causal)
    key = (q.dtype, *q.shape, k.shape[2], causal, torch.get_num_threads())
    if key not in _CHOICE:
        _CHOICE[key] = _fastest(q, k, v, causal)
    return KERNELS[_CHOICE[key]](q, k, v, causal)


def _stamp(w: torch.Tensor) -> tuple[int, int, torch.dtype]:
    return (w._version, w.data_ptr(), w.dtype)


def _pack(owner: nn.Module, name: str, weight: torch.Tensor, rows: int) -> tuple[int, int, torch.dtype]:
    """Register `weight`'s packed copy on `owner` as the non-persistent buffer `name`; return the weight's stamp."""
    owner.register_buffer(name, torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows), persistent=False)
    return _stamp(weight)


def _linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, packed: torch.Tensor,
            stamp: tuple[int, int, torch.dtype], gelu: bool) -> torch.Tensor:  # fmt: skip
    """Fused oneDNN linear (+ exact GELU) on `packed` while it is `w`'s current copy, else the plain ops."""
    if _stamp(w) == stamp and packed.dtype == w.dtype == x.dtype and x.device.type == "cpu" and \
            not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu"):  # fmt: skip
        return torch.ops.mkldnn._linear_pointwise(x, packed, b, "gelu" if gelu else "none", [],
                                                  "none" if gelu else "")  # fmt: skip
    y = F.linear(x, w, b)
    return F.gelu(y) if gelu else y


class CPULinear(nn.Module):
    """`nn.Linear` (same weight and bias Parameters) with a packed copy; `gelu` fuses the activation after it."""

    packed_weight: torch.Tensor

    def __init__(self, lin: nn.Linear, rows: int, gelu: bool = False):
        super().__init__()
        self.weight, self.bias, self.gelu = lin.weight, lin.bias, gelu
        self.stamp = _pack(self, "packed_weight", lin.weight, rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _linear(x, self.weight, self.bias, self.packed_weight, self.stamp, self.gelu)

    def plain(self) -> nn.Linear:
        """The plain module on the same Parameters."""
        out = nn.Linear.__new__(nn.Linear)
        nn.Module.__init__(out)
        out.in_features, out.out_features = self.weight.shape[1], self.weight.shape[0]
        out.weight, out.bias = self.weight, self.bias
        return out


class CPUMLP(MLP):
    """`MLP` whose fc1 carries the GELU inside one oneDNN call."""

    def __init__(self, mlp: MLP, rows: int):
        nn.Module.__init__(self)
        self.fc1 = CPULinear(mlp.fc1, rows, gelu=True)  # type: ignore[assignment]
        self.fc2 = CPULinear(mlp.fc2, rows)  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))

    def plain(self) -> MLP:
        """The plain module on the same Parameters."""
        out = MLP.__new__(MLP)
        nn.Module.__init__(out)
        out.fc1, out.fc2 = self.fc1.plain(), self.fc2.plain()  # type: ignore[operator]
        return out


class CPUAttention(Attention):
    """`Attention` on the same Parameters, with a packed input projection, fused linears and `attention`."""

    packed_in_proj: torch.Tensor

    def __init__(self, attn: Attention, rows: int):
        nn.Module.__init__(self)
        self.heads, self.causal = attn.heads, attn.causal
        self.in_proj_weight, self.in_proj_bias = attn.in_proj_weight, attn.in_proj_bias  # key order kept
        self.bias_k, self.bias_v = attn.bias_k, attn.bias_v
        self.out_proj = CPULinear(attn.out_proj, rows)  # type: ignore[assignment]
        self.stamp = _pack(self, "packed_in_proj", attn.in_proj_weight, rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, D = x.shape
        qkv = _linear(x, self.in_proj_weight, self.in_proj_bias, self.packed_in_proj, self.stamp, False)
        q, k, v = self.split_heads(qkv)  # (B, H, L[+1], hd)
        y = attention(q, k, v, causal=self.causal)  # (B, H, L, hd)
        return self.out_proj(y.transpose(1, 2).reshape(B, L, D))

    def plain(self) -> Attention:
        """The plain module on the same Parameters."""
        out = Attention.__new__(Attention)
        nn.Module.__init__(out)
        out.heads, out.causal = self.heads, self.causal
        out.in_proj_weight, out.in_proj_bias = self.in_proj_weight, self.in_proj_bias
        out.bias_k, out.bias_v = self.bias_k, self.bias_v
        out.out_proj = self.out_proj.plain()  # type: ignore[operator]
        return out


def _swap(module: nn.Module, rows: int) -> nn.Module | None:
    """The fast replacement of one plain module, or None to leave it (and recurse into it)."""
    if isinstance(module, (CPUAttention, CPUMLP, CPULinear)):
        return None
    if nn.utils.parametrize.is_parametrized(module):  # e.g. LoRA deltas: packing would freeze them
        return None
    if isinstance(module, Attention):
        return CPUAttention(module, rows)
    if isinstance(module, MLP):
        return CPUMLP(module, rows)
    if type(module) is nn.Linear:
        return CPULinear(module, rows)
    return None


def _eligible(model: nn.Module) -> bool:
    p = next(model.parameters(), None)
    return p is not None and p.device.type == "cpu" and p.dtype in (torch.float32, torch.bfloat16)


def _swap_children(module: nn.Module, fn: Callable[[nn.Module], nn.Module | None]) -> int:
    """Replace each child for which `fn` returns a module; recurse into the others. Returns the count replaced."""
    n = 0
    for name, child in list(module.named_children()):
        new = fn(child)
        if new is None:
            n += _swap_children(child, fn)
        else:
            setattr(module, name, new)
            n += 1
    return n


@torch.no_grad()
def pack_for_cpu(model: nn.Module, rows: int = 1024) -> int:
    """Swap the fast modules into `model` in place (re-packing ones already swapped); returns how many were swapped.

    `rows` hints the batch rows (items x tokens) oneDNN tunes the packed layout for; any row count stays exact.
    Packing costs one more copy of the linear weights. A model off the CPU, or in another dtype, is left as it is.
    """
    if not has_fused_linear() or not _eligible(model):
        return 0
    unpack_for_cpu(model)
    return _swap_children(model, lambda m: _swap(m, rows))


def unpack_for_cpu(model: nn.Module) -> int:
    """Put the plain modules back (frees the packed copies); returns how many were swapped back."""
    fast = (CPUAttention, CPUMLP, CPULinear)
    return _swap_children(model, lambda m: m.plain() if isinstance(m, fast) else None)
