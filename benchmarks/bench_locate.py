"""Cost of a dense map beside one `encode`: imagebind_huge vision (random weights) in bf16, one 224-px image.

Three paths, interleaved so machine load hits all alike, medians reported:
  encode   model.encode({"vision": x})                 the global embedding (the baseline)
  dense    bindkit.dense.dense_embeddings(enc, x)      global + per-patch embeddings from one forward pass
  locate   bindkit.apps.locate(model, [img], query)    dense + query scoring + pixel heatmap + boxes
Also checks the bf16 dense map against fp32 (min cosine over patches) on a smaller config, and prints peak RSS.
Usage: python benchmarks/bench_locate.py [--config imagebind_huge] [--reps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
from PIL import Image

from bindkit.apps import locate
from bindkit.dense import dense_embeddings
from bindkit.model import ImageBind
from bindkit.registry import get_config


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bf16_agreement(config: str) -> float:
    """Min cosine between bf16 and fp32 dense maps of one random image (random weights)."""
    torch.manual_seed(0)
    model = ImageBind(get_config(config).select(["vision"])).eval()
    side = model.config.encoders["vision"].input_shape[-1]
    x = torch.randn(1, 3, side, side)
    ref = model.encode_dense(x)
    got = model.to(torch.bfloat16).encode_dense(x)
    return float((ref * got).sum(-1).min())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="imagebind_huge")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = ImageBind(get_config(a.config).select(["vision"]))
    model = model.to_empty(device="cpu").to(torch.bfloat16).eval()  # random-valued bf16 weights, no fp32 copy
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    side = model.config.encoders["vision"].input_shape[-1]
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), np.uint8))
    from bindkit.apps.locate import to_tensor

    x = to_tensor([img], side)
    enc = model.encoder("vision")
    q = np.random.default_rng(1).standard_normal(model.config.out_dim).astype(np.float32)
    paths = {
        "encode": lambda: model.encode({"vision": x}),
        "dense": lambda: dense_embeddings(enc, x),
        "locate": lambda: locate(model, [img], q),
    }
    for fn in paths.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(a.reps):
        for k, fn in paths.items():
            times[k].append(timed(fn))
    base = statistics.median(times["encode"])
    print(f"{a.config} vision, bf16, one {side}-px image, {a.threads} threads, {a.reps} interleaved reps (medians):")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"  {k:7s} {med * 1000:8.1f} ms  {1 / med:6.2f} images/s  {med / base:5.3f}x encode")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"bf16 vs fp32 dense map (imagebind_small, random weights): min cosine {bf16_agreement('imagebind_small'):.5f}")


if __name__ == "__main__":
    main()
