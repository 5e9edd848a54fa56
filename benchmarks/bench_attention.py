"""CPU bf16 attention at the encoders' shapes: each kernel's GFLOP/s beside the same-process bf16 matmul peak, the
parts of a plain attention (QK^T, softmax, PV), and what that leaves of each trunk's % of peak.

Kernels, timed in turn (order rotated each rep) so load drift on a shared machine hits them alike:
  sdpa       F.scaled_dot_product_attention (PyTorch's CPU flash kernel)
  matmul     bindkit.runtime.cpu.matmul_softmax (two GEMMs and a softmax over chunks of items)
  bmm-big    the same on (B*H, L, hd) with 8x larger chunks (fewer, larger GEMM calls)
  compiled   torch.compile of SDPA (inductor's CPU flash-attention template), with --compile
The trunk bound: a block's linears do 24 L D^2 FLOPs per item and attention 4 L S D (half when causal). With the
linears at the measured packed-linear rate and attention at the best kernel's, a trunk can reach at most
  total FLOPs / (linear FLOPs / linear rate + attention FLOPs / attention rate)   of the bf16 peak.
Usage: python benchmarks/bench_attention.py [--config imagebind_huge] [--reps 7] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bindkit import get_config
from bindkit.runtime.cpu import matmul_softmax

BATCH = {"vision": 4, "text": 16, "audio": 4, "depth": 16, "thermal": 8, "imu": 16}  # bench_model.py's batches


def tokens(config: str) -> dict[str, tuple[int, int, int, int, bool]]:
    """Per modality: (width, heads, queries L, keys S, causal) of the trunk's attention."""
    from bindkit import ImageBind

    with torch.device("meta"):
        model = ImageBind(get_config(config))
    out = {}
    for m, e in model.config.encoders.items():
        shape = (e.input_shape[0],) if m == "text" else e.input_shape
        x = torch.zeros(1, *shape, dtype=torch.long if m == "text" else torch.float, device="meta")
        if m == "vision":
            x = x.unsqueeze(2).expand(-1, -1, e.kernel[0], -1, -1)  # an image as a clip of T frames
        L = model.encoders[m].stem(x).shape[1]  # tokens, CLS included
        out[m] = (e.width, e.heads, L, L + int(e.bias_kv), m == "text")
    return out


def timed(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, float]:
    """Median seconds of each function, called in turn (order rotated each rep)."""
    names, times = list(fns), {n: [] for n in fns}  # type: ignore[var-annotated]
    for n in names:
        fns[n]()  # warm-up (and compilation)
    for r in range(reps):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t)
    return {n: statistics.median(t) for n, t in times.items()}


def peak(reps: int = 5) -> float:
    """Median GFLOP/s of a 2048^3 bf16 matmul."""
    a = torch.randn(2048, 2048, dtype=torch.bfloat16)
    return 2 * 2048**3 / timed({"mm": lambda: a @ a}, reps)["mm"] / 1e9


def linear_rate(width: int, rows: int, reps: int) -> float:
    """GFLOP/s of the packed bf16 MLP (fc1 with GELU, fc2) on `rows` tokens: what the linears of a block run at."""
    from bindkit.layers import MLP
    from bindkit.runtime.cpu import pack_for_cpu

    mlp = torch.nn.Sequential(MLP(width, 4 * width)).to(torch.bfloat16).eval()
    pack_for_cpu(mlp)
    x = torch.randn(rows, width, dtype=torch.bfloat16)
    with torch.inference_mode():
        t = timed({"mlp": lambda: mlp(x)}, reps)["mlp"]
    return 16 * rows * width**2 / t / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="imagebind_huge")
    ap.add_argument("--modalities", nargs="+", default=list(BATCH))
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of SDPA (slow to compile)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    shapes = tokens(a.config)
    compiled = torch.compile(F.scaled_dot_product_attention, dynamic=False) if a.compile else None
    p0 = peak()
    print(f"{a.config}, {a.threads} thread(s), bf16 inference; GFLOP/s (% of the bf16 matmul peak)")
    for m in a.modalities:
        p0 = measure(m, shapes[m], a.reps, compiled, p0)


def measure(m: str, shape: tuple[int, int, int, int, bool], reps: int, compiled: Callable | None, p0: float) -> float:
    """Time the kernels and parts at one modality's shape; print them and the trunk bound; return the peak."""
    D, H, L, S, causal = shape
    B, hd = BATCH[m], D // H
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, n, hd, generator=g).to(torch.bfloat16) for n in (L, S, S))  # (B, H, L|S, hd)
    flops = 4 * B * H * L * S * hd / (2 if causal else 1)
    fns = {"sdpa": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
           "matmul": lambda: matmul_softmax(q, k, v, causal)}  # fmt: skip
    if not causal:
        fns["bmm-big"] = lambda: _big_chunks(q, k, v)
    if compiled is not None:
        fns["compiled"] = lambda: compiled(q, k, v, is_causal=causal)
    q3, kt, v3 = q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2), v.flatten(0, 1)  # (B*H, L, hd), ...
    s = torch.bmm(q3, kt)  # (B*H, L, S)
    probs = torch.softmax(s, -1)
    parts = {"QK^T": lambda: torch.bmm(q3, kt), "softmax": lambda: torch.softmax(s, -1),
             "PV": lambda: torch.bmm(probs, v3)}  # fmt: skip
    with torch.inference_mode():
        t = timed({**fns, **parts}, reps)
    pk = max(p0, peak())
    lin = linear_rate(D, B * L, reps)
    best = min(fns, key=lambda n: t[n])
    lin_s = 24 * B * L * D * D / lin / 1e9  # seconds of the block's linears at the measured rate
    bound = (24 * B * L * D * D + flops) / (lin_s + t[best]) / 1e9 / pk
    cells = " | ".join(f"{n} {flops / t[n] / 1e9:.0f} ({100 * flops / t[n] / 1e9 / pk:.0f}%)" for n in fns)
    print(f"{m:8} (B{B} H{H} L{L} S{S} hd{hd}{' causal' if causal else ''}) peak {pk:.0f}: {cells}")
    three = t["QK^T"] + t["softmax"] + t["PV"]
    print(f"{'':8} parts: QK^T {flops / 2 / t['QK^T'] / 1e9:.0f} GFLOP/s, softmax {B * H * L * S / t['softmax'] / 1e9:.2f}"
          f" G scores/s ({100 * t['softmax'] / three:.0f}% of the three), PV {flops / 2 / t['PV'] / 1e9:.0f} GFLOP/s;"
          f" attention is {100 * flops / (flops + 24 * B * L * D * D):.1f}% of a block's FLOPs and "
          f"{100 * t[best] / (lin_s + t[best]):.0f}% of its time (linears {lin:.0f} GFLOP/s = {100 * lin / pk:.0f}%):"
          f" trunk bound {100 * bound:.0f}% of peak")  # fmt: skip
    return pk


def _big_chunks(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    import bindkit.runtime.cpu as cpu

    old, cpu.CHUNK_SCORES = cpu.CHUNK_SCORES, cpu.CHUNK_SCORES * 8
    try:
        return matmul_softmax(q, k, v)
    finally:
        cpu.CHUNK_SCORES = old


if __name__ == "__main__":
    main()
