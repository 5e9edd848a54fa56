"""Inference speed per modality: items/s, peak memory and achieved GFLOP/s beside this machine's matmul peak.

Each (config, modality, precision) case runs in a fresh subprocess so its peak RSS is its own. Precisions:
  fp32      the plain fp32 model (the official code's default)
  autocast  fp32 weights under bf16 autocast (what users of the official code do; the baseline for bf16)
  bf16      bf16 weights (`model.to(torch.bfloat16)`)
  packed    bf16 weights pre-packed for oneDNN (`model.pack_for_cpu()`), bindkit's fastest CPU path
The matmul peak is measured inside each case, just before and after its timed passes (the higher median is kept),
so that "% peak" compares runs made under the same load on this shared machine.
Usage: python benchmarks/bench_model.py [--configs imagebind_huge imagebind_small] [--modalities vision text ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

BATCH = {"vision": 4, "text": 16, "audio": 4, "depth": 16, "thermal": 8, "imu": 16}


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 8) -> float:
    """Median GFLOP/s of an n x n x n matmul in `dtype`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def build(config: str, modality: str, precision: str) -> torch.nn.Module:
    """One encoder with PyTorch's default random init, plus CLIP-like positional/CLS draws (std 0.02)."""
    from bindkit import ImageBind, get_config

    torch.manual_seed(0)
    model = ImageBind(get_config(config).select([modality])).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("pos_embed", "cls_token", "bias_k", "bias_v")):
                p.normal_(0, 0.02)
    if precision in ("bf16", "packed"):
        model = model.to(torch.bfloat16)
    return model.pack_for_cpu(rows=1024) if precision == "packed" else model


def inputs(config: str, modality: str) -> dict[str, torch.Tensor]:
    from bindkit import get_config

    e = get_config(config).encoders[modality]
    g = torch.Generator().manual_seed(0)
    if modality == "text":
        ids = torch.randint(1, 49000, (BATCH[modality], e.input_shape[0]), generator=g)
        ids[:, -1] = 49407
        return {modality: ids}
    return {modality: torch.randn(BATCH[modality], *e.input_shape, generator=g)}


def flops_per_item(model: torch.nn.Module, x: dict[str, torch.Tensor]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    # Grad mode keeps the plain F.linear path, whose FLOPs the counter knows (the fused oneDNN op is not counted).
    with FlopCounterMode(display=False) as fc, torch.enable_grad():
        model(x)
    return fc.get_total_flops() / next(iter(x.values())).shape[0]


def run_case(config: str, modality: str, precision: str, reps: int) -> dict:
    """Time `reps` forward passes of one batch; report medians."""
    model, x = build(config, modality, precision), inputs(config, modality)
    flops = flops_per_item(model, x)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "autocast" else contextlib.nullcontext()
    times, dtype = [], torch.float32 if precision == "fp32" else torch.bfloat16
    with torch.inference_mode(), ctx:
        model(x)  # warm-up
        peak = matmul_peak(dtype)
        for _ in range(reps):
            t = time.perf_counter()
            out = model(x)[modality]
            times.append(time.perf_counter() - t)
        peak = max(peak, matmul_peak(dtype))
    n = next(iter(x.values())).shape[0]
    med = statistics.median(times)
    return {"config": config, "modality": modality, "precision": precision, "items_per_s": n / med,
            "gflops_per_item": flops / 1e9, "achieved_gflops": flops * n / med / 1e9, "peak_gflops": peak,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "embedding": out.float().tolist()}  # fmt: skip


def cosine_vs_fp32(rows: list[dict]) -> None:
    """Add the min cosine of bf16 / autocast embeddings to the fp32 ones of the same case."""
    ref = {
        (r["config"], r["modality"]): torch.tensor(r["embedding"]) for r in rows if r["precision"] == "fp32"
    }
    for r in rows:
        base = ref.get((r["config"], r["modality"]))
        r["cos_vs_fp32"] = (
            None if base is None else F.cosine_similarity(torch.tensor(r["embedding"]), base).min().item()
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["imagebind_huge", "imagebind_small"])
    ap.add_argument("--modalities", nargs="+", default=["vision", "text", "audio", "depth", "thermal", "imu"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "autocast", "bf16", "packed"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write all rows to this file")
    a = ap.parse_args()
    if a.case:
        print(json.dumps(run_case(*a.case.split(":"), reps=a.reps)))
        return
    rows = []
    for c in a.configs:
        for m in a.modalities:
            for p in a.precisions:
                cmd = [sys.executable, __file__, "--case", f"{c}:{m}:{p}", "--reps", str(a.reps)]
                rows.append(
                    json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                )
    cosine_vs_fp32(rows)
    print("peak: median GFLOP/s of a 2048^3 matmul in the case's dtype, measured in the same process")
    print(f"{'config':16} {'modality':8} {'precision':9} {'items/s':>9} {'GFLOP/item':>10} {'GFLOP/s':>8} "
          f"{'peak':>6} {'% peak':>7} {'peak MB':>8} {'cos fp32':>8}")  # fmt: skip
    for r in rows:
        peak = r["peak_gflops"]
        cos = "" if r["cos_vs_fp32"] is None else f"{r['cos_vs_fp32']:.5f}"
        print(f"{r['config']:16} {r['modality']:8} {r['precision']:9} {r['items_per_s']:9.3f} "
              f"{r['gflops_per_item']:10.2f} {r['achieved_gflops']:8.1f} {peak:6.0f} {100 * r['achieved_gflops'] / peak:6.1f}% "
              f"{r['peak_rss_mb']:8.0f} {cos:>8}")  # fmt: skip
    if a.json:
        for r in rows:
            r.pop("embedding")
        json.dump({"rows": rows}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
