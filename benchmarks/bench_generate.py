"""Sampling speed of the demo's unCLIP decoder: images/s and peak memory per sampler setting.

Cases (each in a fresh subprocess, so its peak RSS is its own), all drawing 32-px images in batches:
  ddpm-1000   DDPM ancestral sampling over all 1000 training timesteps, fp32 (the textbook baseline)
  ddim-fp32   DDIM with the demo's step count, fp32 (what `bindkit demo` and `bindkit generate` run)
  ddim-bf16   the same under bf16 autocast
  dpm-fp32    DPM-Solver++ (2M) with the demo's step count, fp32
Every step evaluates the UNet twice (classifier-free guidance). The decoder is the full preset's architecture with
PyTorch's random init (speed does not depend on the weights), or a trained one with --decoder DIR.
Usage: python benchmarks/bench_generate.py [--batch 32] [--threads 2] [--decoder RUN/model/decoder]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

CASES = {"ddpm-1000": ("ddpm", 1000, torch.float32), "ddim-fp32": ("ddim", None, torch.float32),
         "ddim-bf16": ("ddim", None, torch.bfloat16), "dpm-fp32": ("dpm", None, torch.float32)}  # fmt: skip


def decoder(folder: str | None):
    from bindkit.apps.decoder import Decoder
    from bindkit.demo.apps_generate import PRESETS

    torch.manual_seed(0)
    return Decoder.load(folder) if folder else Decoder(PRESETS["full"].decoder).eval()


def run_case(name: str, batch: int, folder: str | None, reps: int) -> dict:
    """Median seconds per image of one case (after a warm-up draw)."""
    from diffusers import DDPMScheduler

    dec = decoder(folder)
    sampler, steps, dtype = CASES[name]
    steps = steps or dec.cfg.steps
    if sampler == "ddpm":  # the decoder's own `sampler` offers ddim/dpm; the baseline swaps in DDPM
        dec.sampler = lambda _=None: DDPMScheduler.from_config(dec.noise_scheduler().config)  # type: ignore[method-assign]
        reps, batch = 1, min(batch, 2)
    emb = torch.nn.functional.normalize(torch.randn(batch, dec.cfg.embed_dim), dim=-1)
    dec.sample(emb[:2], steps=2, sampler=None if sampler == "ddpm" else sampler, dtype=dtype)  # warm-up
    times = []
    for r in range(reps):
        t = time.perf_counter()
        dec.sample(emb, steps=steps, seed=r, sampler=None if sampler == "ddpm" else sampler, dtype=dtype)
        times.append((time.perf_counter() - t) / batch)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"case": name, "steps": steps, "batch": batch, "s_per_image": statistics.median(times),
            "images_per_s": 1 / statistics.median(times), "peak_rss_mib": peak}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--decoder")
    ap.add_argument("--case", help=argparse.SUPPRESS)  # a child process runs one case
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.case:
        print(json.dumps(run_case(a.case, a.batch, a.decoder, a.reps)))
        return
    rows = []
    for name in CASES:
        cmd = [sys.executable, __file__, "--case", name, "--batch", str(a.batch), "--threads", str(a.threads),
               "--reps", str(a.reps)] + (["--decoder", a.decoder] if a.decoder else [])  # fmt: skip
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]))
    base = next(r for r in rows if r["case"] == "ddim-fp32")
    print(f"{'case':10s} {'steps':>5s} {'s/image':>8s} {'images/s':>9s} {'vs ddim-fp32':>12s} {'peak MiB':>9s}")
    for r in rows:
        print(f"{r['case']:10s} {r['steps']:5d} {r['s_per_image']:8.3f} {r['images_per_s']:9.2f} "
              f"{base['s_per_image'] / r['s_per_image']:11.2f}x {r['peak_rss_mib']:9.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
