"""Start-up time of exported encoders on OpenVINO: the first load (compiles, fills the blob cache) and the second
(reads the compiled blobs), in fresh subprocesses, plus the first `encode` call.

Usage: python benchmarks/bench_startup.py EXPORT_DIR [EXPORT_DIR ...] [--cache DIR]
(e.g. the per-modality folders `benchmarks/bench_model.py` writes under --export-dir).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load_once(folders: list[str], cache: str) -> dict[str, float]:
    """Seconds to import, open every folder on OpenVINO (with the blob cache) and run one batch of one item each."""
    t0 = time.perf_counter()

    from bindkit.runtime.backends import load_exported
    from bindkit.runtime.export import example_input

    t1 = time.perf_counter()
    models = [load_exported(f, "openvino", cache=Path(cache)) for f in folders]
    t2 = time.perf_counter()
    for rt in models:
        for m in rt.modalities:
            x = example_input(rt, m, batch=1, clips=1)
            rt.forward({m: x[:, 0] if m in ("audio", "depth", "thermal") else x})
    t3 = time.perf_counter()
    return {"import_s": t1 - t0, "load_s": t2 - t1, "first_batch_s": t3 - t2, "total_s": t3 - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--cache", default=None, help="blob cache folder (default: a fresh temporary one)")
    ap.add_argument("--once", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.once:
        print(json.dumps(load_once(a.folders, a.cache)))
        return
    cache = a.cache or tempfile.mkdtemp(prefix="ov-cache-")
    for name in ("first start (compile)", "second start (cached)"):
        out = subprocess.run([sys.executable, __file__, *a.folders, "--cache", cache, "--once"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{name:22} import {r['import_s']:.2f} s, load {r['load_s']:.2f} s, first batch "
              f"{r['first_batch_s']:.2f} s, total {r['total_s']:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
