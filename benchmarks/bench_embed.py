"""Embedding a folder into the store: items/s of `embed_paths` (batched, next batch loading while this one encodes,
one commit per batch) against the straightforward loop (load one file, encode it, write one row), in the same run.

Files are generated under --dir: images, 2-second WAV clips and IMU CSVs, embedded by a random-weight model of
--config (imagebind_tiny by default: the timings are dominated by loading and writing, not the model).

    python benchmarks/bench_embed.py --files 300 --repeats 3
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

import numpy as np


def make_files(folder: Path, n: int) -> list[Path]:
    """n files: a third images, a third WAV, a third IMU CSV."""
    import soundfile as sf
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("images", "audio", "imu"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    t = np.arange(32000) / 16000
    out = []
    for i in range(n):
        if i % 3 == 0:
            p = folder / "images" / f"{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(p, quality=90)
        elif i % 3 == 1:
            p = folder / "audio" / f"{i}.wav"
            sf.write(p, 0.3 * np.sin(2 * np.pi * (100 + i) * t), 16000)
        else:
            p = folder / "imu" / f"{i}.csv"
            rows = np.c_[np.arange(500) / 100, rng.normal(size=(500, 6))]
            np.savetxt(p, rows, delimiter=",", header="t,ax,ay,az,gx,gy,gz", comments="")
        out.append(p)
    return out


def naive(model, files: list[Path], db: Path) -> None:
    """The straightforward loop: per file detect, load, encode and write one row."""
    from bindkit.store.collect import collect
    from bindkit.store.detect import encoder_of
    from bindkit.store.embed import record, sha256_of
    from bindkit.store.inputs import load_inputs
    from bindkit.store.store import Store

    store = Store.for_model(db, model)
    entries, _, _ = collect(files)
    for e in entries:
        enc = encoder_of(e.kind)
        x = load_inputs(e.kind, [e.item], model.config.encoders[enc]).tensor
        v = model.encode({enc: x})[enc][0].numpy()
        store.upsert([{**record(e, store.name), "sha256": sha256_of(e), "vector": v.tolist()}])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--config", default="imagebind_tiny")
    ap.add_argument("--dir", default="/tmp/bindkit-bench-embed")
    a = ap.parse_args()
    import torch

    import bindkit
    from bindkit.store import embed_paths

    root = Path(a.dir)
    shutil.rmtree(root, ignore_errors=True)
    files = make_files(root / "media", a.files)
    torch.manual_seed(0)
    model = bindkit.ImageBind(bindkit.get_config(a.config)).eval()
    times: dict[str, list[float]] = {
        "per-file loop": [],
        "embed_paths": [],
        "embed_paths re-run (no change)": [],
    }
    for r in range(a.repeats):
        t0 = time.perf_counter()
        naive(model, files, root / f"naive{r}")
        times["per-file loop"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        embed_paths([root / "media"], root / f"db{r}", model, batch_size=a.batch_size, progress=False)
        times["embed_paths"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rep = embed_paths([root / "media"], root / f"db{r}", model, batch_size=a.batch_size, progress=False)
        times["embed_paths re-run (no change)"].append(time.perf_counter() - t0)
        assert rep.embedded == 0 and rep.unchanged == a.files
    base = np.median(times["per-file loop"])
    print(f"{a.files} files ({a.config}, batch {a.batch_size}), median of {a.repeats}:")
    for name, ts in times.items():
        med = float(np.median(ts))
        print(f"  {name:32s} {med:7.2f} s  {a.files / med:8.1f} items/s  x{base / med:.2f} vs the loop")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
