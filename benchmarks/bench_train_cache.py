"""Training speed with and without the frozen-anchor cache: a small trained encoder against a larger frozen one.

Trained: imagebind_tiny's depth encoder (128 wide, 4 blocks, 64-pixel maps). Frozen anchor: imagebind_small's vision
encoder (384 wide, 12 blocks, 224-pixel images, projected to the same 128-d space). Without the cache every step
embeds its batch with the frozen encoder (no grad); with it the embeddings are read from the memory-mapped cache,
filled once (its one-time cost is printed, with the number of steps that pay it back). Each mode runs in a fresh
subprocess so its peak RSS is its own; steps/s is the median of several timed repeats.

A second measurement shows the engine's own per-step cost: `train()` (cache reads, schedule, clipping, metrics,
progress bar) against a hand-written loop over the same precomputed anchor embeddings, with imagebind_tiny's depth
and vision encoders at batch 64.
Usage: python benchmarks/bench_train_cache.py [--batch 32] [--repeats 3] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

ITEMS = 256  # distinct (image, depth) pairs: 256 x 224 px images are about 150 MB


def model():
    """vision from imagebind_small (out_dim 128) + depth from imagebind_tiny."""
    from bindkit import ImageBind, ImageBindConfig, get_config

    vision = dataclasses.replace(get_config("imagebind_small").encoders["vision"], out_dim=128)
    cfg = ImageBindConfig(
        "bench-cache", {"vision": vision, "depth": get_config("imagebind_tiny").encoders["depth"]}
    )
    torch.manual_seed(0)
    return ImageBind(cfg)


def data(n: int):
    from bindkit.train import TensorPairs

    g = torch.Generator().manual_seed(0)
    img = torch.randn(n, 3, 224, 224, generator=g)
    return TensorPairs(("vision", "depth"), img, torch.randn(n, 1, 64, 64, generator=g))


def measure(cached: bool, batch: int, steps: int, repeats: int) -> dict:
    """Median steps/s of `repeats` timed runs of `steps` steps (after one warm-up step) in this process."""
    from bindkit.train import PairConfig, TrainConfig, Trainer

    root = tempfile.mkdtemp()
    need = batch * (steps * repeats + 1)
    n = min(need, ITEMS)  # a fixed set of pairs, replicated to cover the timed steps in one epoch
    cfg = TrainConfig(pairs=[PairConfig(("vision", "depth"), data(n), batch_size=batch, replication=-(-need // n))],
                      steps=10**6, cache=cached, cache_dir=f"{root}/cache", run_dir=f"{root}/run", progress=False)  # fmt: skip
    t = time.perf_counter()
    tr = Trainer(cfg, model=model())
    setup = time.perf_counter() - t
    batches = iter(tr.plan.epoch(0))
    one = lambda: (tr.forward_backward(b := next(batches)), tr.optimizer_step(b.pair))  # noqa: E731
    one()  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            one()
        rates.append(steps / (time.perf_counter() - t))
    return {"steps_per_s": statistics.median(rates), "runs": rates, "setup_s": setup, "items": n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def overhead(steps: int, repeats: int, batch: int = 64) -> dict:
    """Median steps/s of `train()` and of a plain PyTorch loop doing the same work (anchor embeddings precomputed)."""
    from bindkit import ImageBind, get_config
    from bindkit.train import PairConfig, TensorPairs, TrainConfig, clip_loss, train

    g = torch.Generator().manual_seed(0)
    img, depth = torch.randn(1024, 3, 64, 64, generator=g), torch.randn(1024, 1, 64, 64, generator=g)
    root, engine, plain = tempfile.mkdtemp(), [], []
    for r in range(repeats):
        torch.manual_seed(0)
        model = ImageBind(get_config("imagebind_tiny").select(["vision", "depth"]))
        cfg = TrainConfig(pairs=[PairConfig(("vision", "depth"), TensorPairs(("vision", "depth"), img, depth),
                                            batch_size=batch, replication=8.0)], steps=steps + 1, progress=False,
                          run_dir=f"{root}/run{r}", cache_dir=f"{root}/cache", checkpoint_every=10**9)  # fmt: skip
        train(cfg, model=model)
        recs = [json.loads(line) for line in open(f"{root}/run{r}/metrics.jsonl")]
        engine.append(steps / (recs[-1]["time"] - recs[0]["time"]))  # first step excluded (warm-up)
        torch.manual_seed(0)
        model = ImageBind(get_config("imagebind_tiny").select(["vision", "depth"]))
        with torch.no_grad():
            anchor = torch.nn.functional.normalize(model.encoders["vision"](img), dim=-1)
        enc = model.encoders["depth"].train()
        opt = torch.optim.AdamW(enc.parameters(), lr=1e-3, betas=(0.9, 0.95))
        for k in range(steps + 1):
            if k == 1:
                t = time.perf_counter()
            idx = torch.randint(0, 1024, (batch,), generator=g)
            loss = clip_loss(torch.nn.functional.normalize(enc(depth[idx]), dim=-1), anchor[idx], 5.0)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        plain.append(steps / (time.perf_counter() - t))
    return {"engine": statistics.median(engine), "plain": statistics.median(plain), "runs": [engine, plain]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--mode", choices=["cached", "direct", "overhead"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    steps = {"cached": 5 if a.quick else 20, "direct": 1 if a.quick else 3}
    if a.mode == "overhead":
        print(json.dumps(overhead(10 if a.quick else 40, a.repeats)))
        return
    if a.mode:
        print(json.dumps(measure(a.mode == "cached", a.batch, steps[a.mode], a.repeats)))
        return
    out = {}
    for mode in ("direct", "cached", "overhead"):
        cmd = [sys.executable, __file__, "--mode", mode, "--batch", str(a.batch), "--repeats", str(a.repeats)]
        cmd += ["--threads", str(a.threads)] if a.threads else []
        out[mode] = json.loads(subprocess.run(cmd + (["--quick"] if a.quick else []), check=True,
                                              capture_output=True, text=True).stdout.splitlines()[-1])  # fmt: skip
    print(f"trained: imagebind_tiny depth (64 px); frozen anchor: imagebind_small vision (224 px); batch {a.batch}; "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    for mode, r in out.items():
        if mode == "overhead":
            continue
        runs = ", ".join(f"{x:.3f}" for x in r["runs"])
        print(f"  {mode:7s} {r['steps_per_s']:8.3f} steps/s  ({r['steps_per_s'] * a.batch:7.1f} pairs/s; runs {runs}) "
              f"peak RSS {r['peak_rss_mb']:.0f} MB, set-up {r['setup_s']:.1f} s for {r['items']} items")  # fmt: skip
    speedup = out["cached"]["steps_per_s"] / out["direct"]["steps_per_s"]
    fill = out["cached"]["setup_s"] - out["direct"]["setup_s"]  # the cache fill is the set-up difference
    saved = 1 / out["direct"]["steps_per_s"] - 1 / out["cached"]["steps_per_s"]
    print(f"  cache speed-up (median steps/s ratio): {speedup:.1f}x; one-time fill ~{fill:.1f} s, repaid after "
          f"~{max(fill, 0) / saved:.0f} steps (each item is embedded once, then read every epoch)")  # fmt: skip
    o = out["overhead"]
    print(f"engine overhead (imagebind_tiny depth vs tiny vision, batch 64, cached anchors): train() "
          f"{o['engine']:.2f} steps/s vs a plain PyTorch loop {o['plain']:.2f} steps/s (ratio "
          f"{o['engine'] / o['plain']:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
