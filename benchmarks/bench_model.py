"""Inference speed per modality and runtime: items/s, peak memory and achieved GFLOP/s beside the matmul peak.

Each (config, modality, case) runs in a fresh subprocess so its peak RSS is its own. Cases:
  fp32              the plain fp32 PyTorch model (the official code's default)
  autocast          fp32 weights under bf16 autocast (must be at least as fast as fp32)
  bf16              bf16 weights with the CPU fast path (`model.to(torch.bfloat16).pack_for_cpu()`)
  openvino-bf16     bindkit's OpenVINO export run by OpenVINO's CPU plugin in bf16
  openvino-int8     the same with NNCF int8 trunks (calibrated on the digits world, --calibration-items items)
  onnxruntime-fp32  bindkit's ONNX export on ONNX Runtime (fp32)
Exports are written once per (config, modality, format, precision) under --export-dir, in their own subprocess.
The matmul peak (bf16 for the bf16/int8 cases, fp32 otherwise) is measured inside each case, just before and after
its timed passes (the higher median is kept), so "% peak" compares runs made under the same load on a shared machine.
Usage: python benchmarks/bench_model.py [--configs imagebind_huge imagebind_small] [--modalities vision text ...]
       [--cases fp32 bf16 ...] [--interleave openvino-bf16 openvino-int8 bf16]
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
from pathlib import Path

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


RUNTIMES = {"openvino-bf16": ("openvino", "openvino", "bf16"), "openvino-int8": ("openvino", "openvino", "int8"),
            "onnxruntime-fp32": ("onnxruntime", "onnx", "fp32")}  # case -> (backend, format, precision)


def build(config: str, modality: str, precision: str) -> torch.nn.Module:
    """One encoder with PyTorch's default random init, plus CLIP-like positional/CLS draws (std 0.02)."""
    from bindkit import ImageBind, get_config

    torch.manual_seed(0)
    model = ImageBind(get_config(config).select([modality])).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("pos_embed", "cls_token", "bias_k", "bias_v")):
                p.normal_(0, 0.02)
    return model.to(torch.bfloat16).pack_for_cpu(rows=1024) if precision == "bf16" else model


def inputs(config: str, modality: str, n: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """`n` (default: the modality's batch) random items: normal floats, or token ids ending in EOT."""
    from bindkit import get_config

    e = get_config(config).encoders[modality]
    g = torch.Generator().manual_seed(seed)
    n = n or BATCH[modality]
    if modality == "text":
        ids = torch.randint(1, 49000, (n, e.input_shape[0]), generator=g)
        ids[:, -1] = 49407
        return {modality: ids}
    return {modality: torch.randn(n, *e.input_shape, generator=g)}


def flops_per_item(config: str, x: dict[str, torch.Tensor]) -> float:
    """FLOPs of the plain model on meta tensors (no memory, so each case's peak RSS stays its own)."""
    from torch.utils.flop_counter import FlopCounterMode

    from bindkit import ImageBind, get_config

    with torch.device("meta"):
        model = ImageBind(get_config(config).select(list(x)))
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        for m, v in x.items():  # inputs carry no clip dimension here; the input checks cannot run on meta
            model.encoders[m].embed_items(v.to("meta"))
    return fc.get_total_flops() / next(iter(x.values())).shape[0]


def export_dir(root: str, config: str, modality: str, case: str) -> Path:
    return Path(root) / f"{config}-{modality}-{case}"


def export_case(config: str, modality: str, case: str, root: str, items: int) -> None:
    """Export one encoder for a runtime case (skipped when the folder already holds it)."""
    from bindkit import ImageBind
    from bindkit.runtime.backends import to_graph_input
    from bindkit.runtime.export import export, read_manifest

    out = export_dir(root, config, modality, case)
    if (read_manifest(out) or {}).get("encoders", {}).get(modality):
        return
    _, fmt, precision = RUNTIMES[case]
    x = inputs(config, modality, items, seed=1)[modality]  # int8: calibrated on the distribution it is timed on
    model = build(config, modality, "fp32")
    assert isinstance(model, ImageBind)  # fp32: the plain model
    calib = lambda m: [torch.from_numpy(to_graph_input(model, m, x[i : i + 8])) for i in range(0, items, 8)]  # noqa: E731
    export(model, out, fmt, [modality], precision, calib, items)


def run_case(config: str, modality: str, precision: str, reps: int, root: str = "") -> dict:
    """Time `reps` forward passes of one batch; report medians."""
    x = inputs(config, modality)
    flops = flops_per_item(config, x)
    model = load_case(config, modality, precision, root)
    times, dtype = [], torch.float32 if precision.endswith("fp32") else torch.bfloat16
    with torch.inference_mode(), _ctx(precision):
        model(x)  # warm-up
        peak = matmul_peak(dtype)
        for _ in range(reps):
            t = time.perf_counter()
            out = model.forward(x)[modality]
            times.append(time.perf_counter() - t)
        peak = max(peak, matmul_peak(dtype))
    n = next(iter(x.values())).shape[0]
    med = statistics.median(times)
    return {"config": config, "modality": modality, "precision": precision, "items_per_s": n / med,
            "gflops_per_item": flops / 1e9, "achieved_gflops": flops * n / med / 1e9, "peak_gflops": peak,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "embedding": out.float().tolist()}  # fmt: skip


def load_case(config: str, modality: str, case: str, root: str):
    """The model of one case: a PyTorch model (fp32 / autocast / bf16 fast path) or an exported runtime model."""
    if case in RUNTIMES:
        from bindkit.runtime.backends import load_exported

        return load_exported(export_dir(root, config, modality, case), RUNTIMES[case][0])
    return build(config, modality, case)


def interleaved(config: str, modality: str, cases: list[str], reps: int, root: str) -> dict:
    """All `cases` in one process, timed in turn (order rotated each rep) so load drift hits them alike.

    Returns items/s per case (median) and, per case, the median over reps of its speed-up on the first case."""
    x = inputs(config, modality)
    flops = flops_per_item(config, x)
    times: dict[str, list[float]] = {c: [] for c in cases}
    models, out, added = {}, {}, {}
    for c in cases:  # load and warm up (OpenVINO compiles lazily; the attention choice is timed) one by one
        before = rss_mb()
        models[c] = load_case(config, modality, c, root)  # outside inference mode: packing stamps weight versions
        with torch.inference_mode(), _ctx(c):
            out[c] = models[c].forward(x)[modality].float()
        added[c] = rss_mb() - before  # what this case holds: weights, packed copies, compiled graph, arenas
    with torch.inference_mode():
        peak = matmul_peak(torch.bfloat16)
        for r in range(reps):
            for c in cases[r % len(cases):] + cases[: r % len(cases)]:
                with _ctx(c):
                    t = time.perf_counter()
                    models[c].forward(x)
                    times[c].append(time.perf_counter() - t)
        peak = max(peak, matmul_peak(torch.bfloat16))
    n, base = next(iter(x.values())).shape[0], times[cases[0]]
    ref = next((c for c in cases if c.endswith("fp32")), None)  # min cosine of each case's outputs to an fp32 case
    return {"config": config, "modality": modality, "cases": cases, "peak_gflops": peak,
            "gflops_per_item": flops / 1e9, "reps": reps,
            "items_per_s": {c: n / statistics.median(t) for c, t in times.items()},
            "speedup": {c: statistics.median(b / a for a, b in zip(t, base, strict=True)) for c, t in times.items()},
            "cos_vs_fp32": {c: F.cosine_similarity(y, out[ref]).min().item() for c, y in out.items()} if ref else {},
            "rss_added_mb": added, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def rss_mb() -> float:
    """This process's resident memory now (MB), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ctx(case: str) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if case == "autocast" else contextlib.nullcontext()


def disk_mb(root: str, config: str, modality: str, case: str) -> float:
    """Size of an exported encoder's files on disk (MB)."""
    folder = export_dir(root, config, modality, case)
    return sum(p.stat().st_size for p in folder.iterdir() if p.name != "manifest.json") / 1e6


def print_interleaved(rows: list[dict], root: str) -> None:
    """One line per (config, modality): items/s, % of the bf16 peak and speed-up on the first case, per case."""
    print("interleaved in one process: items/s (% of the bf16 matmul peak, min cosine to the fp32 case's outputs, "
          "resident memory the case added at load + first pass)"
          " x median per-rep speed-up on "
          f"{rows[0]['cases'][0]}")  # fmt: skip
    for r in rows:
        cells = []
        for c in r["cases"]:
            pct = 100 * r["items_per_s"][c] * r["gflops_per_item"] / r["peak_gflops"]
            cos = f", cos {r['cos_vs_fp32'][c]:.4f}" if r["cos_vs_fp32"] else ""
            cells.append(f"{c} {r['items_per_s'][c]:.3f} ({pct:.0f}%{cos}, +{r['rss_added_mb'][c] / 1e3:.2f} GB) "
                         f"x{r['speedup'][c]:.2f}")  # fmt: skip
        print(f"{r['config']:16} {r['modality']:8} peak {r['peak_gflops']:.0f} GFLOP/s, RSS {r['peak_rss_mb']:.0f} "
              f"MB | " + " | ".join(cells))  # fmt: skip
        if "openvino-int8" in r["cases"] and export_dir(root, r["config"], r["modality"], "onnxruntime-fp32").is_dir():
            i8, f32 = (disk_mb(root, r["config"], r["modality"], c) for c in ("openvino-int8", "onnxruntime-fp32"))
            print(f"{'':25} int8 on disk {i8:.0f} MB = {100 * i8 / f32:.0f}% of the fp32 ONNX {f32:.0f} MB")


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
    ap.add_argument("--cases", nargs="*", default=["fp32", "autocast", "bf16", *RUNTIMES],
                    help="cases timed each in its own process (its own peak RSS); none: only --interleave")
    ap.add_argument("--interleave", nargs="*", default=[], metavar="CASE",
                    help="also time these cases in one process, in turn, as ratios to the first "
                         "(e.g. openvino-bf16 openvino-int8 bf16)")  # fmt: skip
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--export-dir", default=str(Path.home() / ".cache/bindkit/bench-exports"))
    ap.add_argument("--calibration-items", type=int, default=64, help="int8 calibration items (digits world)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(),
                    help="threads for every runtime (1 is steadier on a shared machine)")  # fmt: skip
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--pair", help=argparse.SUPPRESS)
    ap.add_argument("--export", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write all rows to this file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)  # the runtime backends follow it
    if a.export:
        c, m, p = a.export.split(":")
        export_case(c, m, p, root=a.export_dir, items=a.calibration_items)
        return
    if a.case:
        c, m, p = a.case.split(":")
        print(json.dumps(run_case(c, m, p, reps=a.reps, root=a.export_dir)))
        return
    if a.pair:
        c, m, cases = a.pair.split(":")
        print(json.dumps(interleaved(c, m, cases.split(","), reps=a.reps, root=a.export_dir)))
        return
    rows, pairs = [], []
    common = ["--reps", str(a.reps), "--export-dir", a.export_dir, "--threads", str(a.threads)]
    for c in a.configs:
        for m in a.modalities:
            for p in dict.fromkeys([*a.cases, *a.interleave]):
                if p in RUNTIMES:
                    subprocess.run([sys.executable, __file__, "--export", f"{c}:{m}:{p}", *common,
                                    "--calibration-items", str(a.calibration_items)], check=True)  # fmt: skip
            for p in a.cases:
                cmd = [sys.executable, __file__, "--case", f"{c}:{m}:{p}", *common]
                rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "embedding"}), flush=True)
            if a.interleave:
                cmd = [sys.executable, __file__, "--pair", f"{c}:{m}:{','.join(a.interleave)}", *common]
                pairs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
                print(json.dumps(pairs[-1]), flush=True)
    if rows:
        print_table(rows)
    if pairs:
        print_interleaved(pairs, a.export_dir)
    if a.json:
        for r in rows:
            r.pop("embedding")
        json.dump({"rows": rows, "interleaved": pairs}, open(a.json, "w"), indent=1)


def print_table(rows: list[dict]) -> None:
    """One line per case: items/s, GFLOP/s, % of the same-process peak, peak RSS, cosine to fp32."""
    cosine_vs_fp32(rows)
    print("peak: median GFLOP/s of a 2048^3 matmul in the case's dtype, measured in the same process")
    print(f"{'config':16} {'modality':8} {'case':16} {'items/s':>9} {'GFLOP/item':>10} {'GFLOP/s':>8} "
          f"{'peak':>6} {'% peak':>7} {'peak MB':>8} {'cos fp32':>8}")  # fmt: skip
    for r in rows:
        peak = r["peak_gflops"]
        cos = "" if r["cos_vs_fp32"] is None else f"{r['cos_vs_fp32']:.5f}"
        print(f"{r['config']:16} {r['modality']:8} {r['precision']:16} {r['items_per_s']:9.3f} "
              f"{r['gflops_per_item']:10.2f} {r['achieved_gflops']:8.1f} {peak:6.0f} {100 * r['achieved_gflops'] / peak:6.1f}% "
              f"{r['peak_rss_mb']:8.0f} {cos:>8}")  # fmt: skip


if __name__ == "__main__":
    main()
