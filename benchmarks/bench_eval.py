"""Evaluation hot paths against straightforward baselines measured in the same run (medians of `--repeats`).

1. Few-shot probes, ESC-50 sized (50 classes, 1024-d, k in 1/2/4/8, 3 seeds, the paper's audio settings):
   `train_probes` (gradients written out, all seeds stepping together in batched matmuls) vs one `nn.Linear` +
   `torch.optim.AdamW` per seed, the obvious implementation. Same update rule (the tests check equality).
2. Recall@K (1/5/10), Clotho sized (5,225 caption queries x 1,045 clips) and 20,000 x 20,000: rank of the best
   relevant item by one comparison pass vs a full `argsort` per query.
3. Re-running from the embedding cache, ESC-50 sized (2,000 files of 441 KB, as 5 s of 44.1 kHz 16-bit mono):
   keys from the memoised file hashes and a cache load vs hashing every file again (the cold path), items/s.
Peak memory: tracemalloc peak of each timed call (numpy and Python allocations; torch's own allocator is not seen).

    python benchmarks/bench_eval.py [--repeats 3]
"""

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from bindkit.evaluate import EmbeddingCache, ProbeSettings, recall_at_k, train_probes
from bindkit.evaluate.cache import sha256_file
from bindkit.evaluate.readers import Item


def say(*a) -> None:
    print(*a, flush=True)


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median seconds over `repeats` plain runs, tracemalloc peak MiB of one more run)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()  # separately: tracing slows Python-heavy code down
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def torch_probes(x, y, c, st, seeds):
    """Baseline: one torch linear probe per seed."""
    for s, seed in enumerate(seeds):
        xs, ys = torch.tensor(x[s], dtype=torch.float32), torch.tensor(y[s])
        lin = torch.nn.Linear(xs.shape[1], c)
        torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
        opt = torch.optim.AdamW(lin.parameters(), lr=st.lr, weight_decay=st.weight_decay)
        g = torch.Generator().manual_seed(seed)
        for _ in range(st.epochs):
            for idx in torch.randperm(len(xs), generator=g).split(min(st.batch_size, len(xs))):
                loss = torch.nn.functional.cross_entropy(lin(xs[idx]), ys[idx])
                opt.zero_grad(), loss.backward(), opt.step()


def bench_fewshot(repeats: int) -> None:
    rng, st, seeds, c = np.random.default_rng(0), ProbeSettings(), (0, 1, 2), 50
    say("few-shot probes, 50 classes x 1024-d, 3 seeds, lr 1.6e-3 wd 0.05 50 epochs batch 32")
    for k in (1, 2, 4, 8):
        x = rng.normal(size=(3, k * c, 1024)).astype(np.float32)
        y = np.tile(np.repeat(np.arange(c), k), (3, 1))
        ours, mem = timed(lambda: train_probes(x, y, c, st, seeds), repeats)  # noqa: B023
        base, bmem = timed(lambda: torch_probes(x, y, c, st, seeds), repeats)  # noqa: B023
        steps = 3 * st.epochs * -(-k * c // st.batch_size)
        say(f"  k={k}: ours {ours:.2f} s ({steps / ours:,.0f} steps/s, {mem:.0f} MiB) | torch loop {base:.2f} s "
              f"({steps / base:,.0f} steps/s, {bmem:.0f} MiB) | x{base / ours:.1f}")  # fmt: skip


def argsort_recall(s, rel, ks, chunk=1024):
    hits = {k: 0 for k in ks}
    for a in range(0, len(s), chunk):
        order = np.argsort(-s[a : a + chunk], axis=1)
        r = np.take_along_axis(rel[a : a + chunk], order, axis=1)
        for k in ks:
            hits[k] += int(r[:, :k].any(1).sum())
    return {k: 100 * h / len(s) for k, h in hits.items()}


def bench_recall(repeats: int) -> None:
    rng = np.random.default_rng(1)
    say("Recall@1/5/10")
    for q, n, per in ((5225, 1045, 5), (20000, 20000, 1)):
        owner = np.arange(q) // per % n
        ours_t, base_t, mem, bmem = 0.0, 0.0, 0.0, 0.0
        for a in range(0, q, 4096):  # chunked as `retrieval` does, so memory stays bounded
            s = rng.normal(size=(min(4096, q - a), n)).astype(np.float32)
            rel = np.zeros(s.shape, bool)
            rel[np.arange(len(s)), owner[a : a + len(s)]] = True
            ours, ref = recall_at_k(s, rel), argsort_recall(s, rel, (1, 5, 10))
            assert np.allclose(list(ours.values()), list(ref.values())), (ours, ref)
            t, m = timed(lambda: recall_at_k(s, rel), repeats)  # noqa: B023
            bt, bm = timed(lambda: argsort_recall(s, rel, (1, 5, 10)), repeats)  # noqa: B023
            ours_t, base_t, mem, bmem = ours_t + t, base_t + bt, max(mem, m), max(bmem, bm)
        say(f"  {q} x {n}: ours {ours_t:.2f} s ({q / ours_t:,.0f} queries/s, {mem:.0f} MiB) | argsort "
              f"{base_t:.2f} s ({q / base_t:,.0f} queries/s, {bmem:.0f} MiB) | x{base_t / ours_t:.1f}")  # fmt: skip


def bench_cache(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(2000):
            p = Path(tmp) / "audio" / f"{i}.wav"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(np.random.default_rng(i).bytes(441_000))
            files.append(p)
        cache = EmbeddingCache(Path(tmp) / "cache")
        keys = [cache.item_key("audio", Item(p)) for p in files]
        cache.save_index()
        cache.get_or_compute("m", "esc50-audio", keys, lambda pos: np.ones((len(pos), 1024)))

        def warm():
            c = EmbeddingCache(Path(tmp) / "cache")
            ks = [c.item_key("audio", Item(p)) for p in files]
            c.get_or_compute("m", "esc50-audio", ks, lambda pos: 1 / 0)

        ours, mem = timed(warm, repeats)
        base, bmem = timed(lambda: [sha256_file(p) for p in files], repeats)
        say(f"cache re-run, 2000 files x 441 KB: memoised keys + load {ours:.3f} s ({2000 / ours:,.0f} items/s, "
              f"{mem:.0f} MiB) | re-hash every file {base:.3f} s ({2000 / base:,.0f} items/s) | x{base / ours:.1f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    bench_fewshot(args.repeats)
    bench_recall(args.repeats)
    bench_cache(args.repeats)


if __name__ == "__main__":
    main()
