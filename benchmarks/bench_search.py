"""Search at scale: index build time, query latency (p50/p95) and recall@10 of the store's IVF-PQ search.

The vectors are a stand-in for real embeddings: `--centres` random unit centres in `--dim` dimensions, and each
stored vector a noisy sample around one of them (x = normalise(c + sigma * g / sqrt(dim)), g ~ N(0, I)), so the
collection is clustered as real embedding collections are (many near-duplicates per concept) and the true top 10 of
a query are close together, which is the hard case for a quantised index. Queries are fresh samples around random
centres. Recall@10 is measured against exact search computed in numpy. The baseline is the same store searched
exactly (no index). Targets: p95 < 20 ms and recall@10 >= 0.95 at 1,000,000 x 1024.

    python benchmarks/bench_search.py                 # 1M x 1024, ~4 GB on disk under --dir
    python benchmarks/bench_search.py --n 100000      # a quicker run
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bindkit.store.store import Store, schema


def samples(
    rng: np.random.Generator, centres: np.ndarray, n: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors around random centres -> (vectors (n, D) float32, centre index (n,))."""
    idx = rng.integers(0, len(centres), n)
    x = centres[idx] + sigma * rng.standard_normal((n, centres.shape[1]), dtype=np.float32) / np.sqrt(
        centres.shape[1]
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), idx


def fill(store: Store, rng: np.random.Generator, centres: np.ndarray, n: int, sigma: float, queries: np.ndarray,
         k: int, chunk: int = 50_000) -> np.ndarray:  # fmt: skip
    """Write n vectors in chunks while keeping the exact top-k ids of every query -> (Q, k) int64 ids."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, n, chunk):
        x, centre = samples(rng, centres, min(chunk, n - start), sigma)
        ids = np.arange(start, start + len(x))
        cols = {"id": [f"{i:08d}" for i in ids], "path": [f"/bench/{i}" for i in ids], "source": ["/bench"] * len(x),
                "modality": np.array(["image", "audio", "depth", "imu"])[ids % 4].tolist()}  # fmt: skip
        cols |= {
            "sha256": [f"{rng.integers(1 << 62):016x}" * 4 for _ in ids],
            "model": ["bench-model"] * len(x),
        }
        cols |= {"label": [str(c % 10) for c in centre], "meta": ["{}"] * len(x), "text": [""] * len(x)}
        cols |= {"mtime": [0.0] * len(x), "size": [0] * len(x)}
        cols["vector"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
        store.table.add(pa.table(cols, schema=schema(x.shape[1])))
        s = queries @ x.T  # (Q, chunk)
        top = np.argpartition(-s, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, ids[top]], 1)
        order = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
        print(f"\r  wrote {start + len(x):,}/{n:,}", end="", flush=True)
    print()
    return best_i


def run_queries(store: Store, queries: np.ndarray, k: int, **kw) -> tuple[list[set[int]], np.ndarray]:
    """Search every query once (after one warm-up query) -> (result ids per query, latencies in ms)."""
    store.search(queries[0], k, **kw)
    found, lat = [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = store.search(q, k, **kw)
        lat.append((time.perf_counter() - t0) * 1e3)
        found.append({int(h.id) for h in hits})
    return found, np.array(lat)


def recall(found: list[set[int]], exact: np.ndarray) -> float:
    return float(np.mean([len(f & set(e.tolist())) / len(e) for f, e in zip(found, exact, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--centres", type=int, default=None, help="default n/100 (10,000 at 1M)")
    ap.add_argument("--sigma", type=float, default=0.5, help="noise norm relative to the unit centre")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--exact-queries", type=int, default=20, help="queries for the exact-scan baseline")
    ap.add_argument("--partitions", type=int, default=None, help="IVF partitions (default: the store's rule)")
    ap.add_argument("--index-type", default="IVF_RQ", choices=["IVF_PQ", "IVF_RQ", "IVF_SQ", "IVF_HNSW_SQ"])
    ap.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        help="k-means training vectors per partition (store default 64)",
    )
    ap.add_argument("--max-iterations", type=int, default=None, help="k-means iterations")
    ap.add_argument("--nprobes", default="16,32,64")
    ap.add_argument("--refine", default="4,8,16")
    ap.add_argument("--dir", default="/tmp/bindkit-bench-search")
    ap.add_argument(
        "--num-bits", type=int, default=None, help="IVF_RQ bits per dimension (LanceDB default 1)"
    )
    ap.add_argument("--keep", action="store_true", help="reuse the table in --dir if it has --n rows")
    ap.add_argument("--rebuild", action="store_true", help="with --keep: build the index again")
    a = ap.parse_args()
    k, rng = 10, np.random.default_rng(0)
    a.centres = a.centres or max(1, a.n // 100)
    centres = rng.standard_normal((a.centres, a.dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries, _ = samples(np.random.default_rng(1), centres, a.queries, a.sigma)
    reuse = a.keep and Path(a.dir).exists() and Store(a.dir, "bench", a.dim).count() == a.n
    if not reuse:
        shutil.rmtree(a.dir, ignore_errors=True)
    store = Store(a.dir, "bench", a.dim)
    t0 = time.perf_counter()
    exact = (
        np.load(Path(a.dir) / "exact.npy") if reuse else fill(store, rng, centres, a.n, a.sigma, queries, k)
    )
    np.save(Path(a.dir) / "exact.npy", exact)
    print(f"{a.n:,} x {a.dim} vectors around {a.centres:,} centres (sigma {a.sigma}); data + exact top-{k} "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    if not store.has_index():
        store.optimize()  # one compacted fragment, as after `embed_paths`
        if a.exact_queries:
            _, base = run_queries(store, queries[: a.exact_queries], k)
            print(f"baseline exact scan: p50 {np.median(base):.1f} ms  p95 {np.percentile(base, 95):.1f} ms "
                  f"({a.exact_queries} queries)", flush=True)  # fmt: skip
    if not store.has_index() or a.rebuild:
        t0 = time.perf_counter()
        opts = {"sample_rate": a.sample_rate, "max_iterations": a.max_iterations, "num_bits": a.num_bits}
        opts = {k: v for k, v in opts.items() if v}
        store.build_index(a.index_type, a.partitions, **opts)
        print(
            f"index build ({a.index_type}, {opts or 'defaults'}): {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    print(f"{'nprobes':>8} {'refine':>6} {'p50 ms':>8} {'p95 ms':>8} {'q/s':>7} {'recall@10':>10}")
    for nprobes in map(int, a.nprobes.split(",")):
        for refine in map(int, a.refine.split(",")):
            found, lat = run_queries(store, queries, k, nprobes=nprobes, refine_factor=refine)
            ok = "  ok" if np.percentile(lat, 95) < 20 and recall(found, exact) >= 0.95 else ""
            print(f"{nprobes:>8} {refine:>6} {np.median(lat):8.2f} {np.percentile(lat, 95):8.2f} "
                  f"{1e3 / lat.mean():7.0f} {recall(found, exact):10.3f}{ok}")  # fmt: skip
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
