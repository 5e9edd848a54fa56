"""Tokenizer speed: batched `tokenize(list)` vs per-string calls of the same cached tokenizer.

Corpora: (a) 2000 unique synthetic ASCII captions; (b) the same with 5% of them carrying accents, curly quotes or
HTML entities (the ftfy path); (c) the 120 strings of the official fixture, most of them chosen to exercise ftfy (worst case for batching, since
cleaning dominates and is per string either way). Baselines, both with the cached tokenizer and warm word cache:
`loop`: the public `tokenize(s)` called once per string, then `torch.cat`; `encode-loop`: the official helper's
structure, `encode` per string, pad a Python list, `torch.tensor`, `torch.stack`. Rates are CPU time (the machine
may be shared; the tokenizer runs on one thread), plus the wall-clock speed-up. Also prints the one-string latency
and the cost of building a tokenizer (wall clock; the official helper builds one per call), the cold-cache batch,
and tracemalloc peaks. Medians of `--repeats`.

    python benchmarks/bench_text.py [--repeats 7]
"""

import argparse
import json
import random
import statistics
import time
import tracemalloc
from pathlib import Path

import torch

from bindkit.data.text import EOT, SOT, Tokenizer, get_tokenizer, tokenize

FIXTURE = Path(__file__).resolve().parents[2] / "shared/fixtures/official/preprocessing/cases.json"
WORDS = (
    "a an the photo picture dog cat horse man woman child car bus train red blue green small large old "
    "young sitting standing running on in under next to near with a of street field beach kitchen table "
    "tree house road river sunset night snow grass two three several playing eating holding looking"
).split()
ODD = ["café au lait", "naïve “quoted” text", "fish &amp; chips", "Zürich straße", "crème brûlée",
       "&lt;b&gt;bold&lt;/b&gt;", "piñata"]  # fmt: skip


def captions(n: int, odd_every: int = 20, seed: int = 0) -> list[str]:
    """n unique captions of 6-20 words; every `odd_every`-th gets a string that needs ftfy/html cleaning."""
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 20))]
        if odd_every and len(out) % odd_every == 0:
            words.insert(rng.randint(0, len(words)), rng.choice(ODD))
        s = " ".join(words).capitalize() + "."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def encode_loop(texts: list[str], tok: Tokenizer, length: int = 77) -> torch.Tensor:
    rows = []
    for t in texts:
        ids = ([SOT] + tok.encode(t))[: length - 1] + [EOT]
        rows.append(torch.tensor(ids + [0] * (length - len(ids)), dtype=torch.long))
    return torch.stack(rows)


def timed(fn, repeats: int) -> float:
    """Median seconds of CPU time (`process_time`: robust on a shared machine; the tokenizer is single-threaded)."""
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def wall(fn, repeats: int) -> float:
    """Median wall-clock seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_kib(fn) -> float:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1024


def compare(name: str, texts: list[str], repeats: int) -> None:
    tok = get_tokenizer()
    batch = lambda: tokenize(texts)  # noqa: E731
    loop = lambda: torch.cat([tokenize(t) for t in texts])  # noqa: E731
    enc = lambda: encode_loop(texts, tok)  # noqa: E731
    assert torch.equal(batch(), loop()) and torch.equal(batch(), enc())  # also warms the word cache
    tb, tl, te = timed(batch, repeats), timed(loop, repeats), timed(enc, repeats)
    n = len(texts)
    print(
        f"\n{name}: {n} strings (CPU time; wall-clock batch speed-up vs loop {wall(loop, repeats) / wall(batch, repeats):.2f}x)"
    )
    print(f"  batch        {n / tb:10.0f} strings/s  peak {peak_kib(batch):8.0f} KiB")
    print(
        f"  loop         {n / tl:10.0f} strings/s  peak {peak_kib(loop):8.0f} KiB   batch speed-up {tl / tb:.2f}x"
    )
    print(
        f"  encode-loop  {n / te:10.0f} strings/s  peak {peak_kib(enc):8.0f} KiB   batch speed-up {te / tb:.2f}x"
    )
    cold_b = timed(lambda: Tokenizer.__call__(_fresh(), texts), 3)
    cold_e = timed(lambda: encode_loop(texts, _fresh()), 3)
    print(
        f"  cold word cache (build excluded): batch {cold_b * 1e3:.1f} ms, encode-loop {cold_e * 1e3:.1f} ms"
    )


_BASE = None


def _fresh() -> Tokenizer:
    """The shared tokenizer's tables with empty word and chunk caches (building one takes ~0.1 s, excluded)."""
    global _BASE
    _BASE = _BASE or Tokenizer()
    t = object.__new__(Tokenizer)
    t.__dict__.update(_BASE.__dict__)
    t.cache = {k: v for k, v in _BASE.cache.items() if k.startswith("<|")}  # the special tokens
    t.chunks = {"\x00": (-1,)}  # the row separator
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    build = wall(Tokenizer, 3)
    tokenize("warm up")
    one = wall(lambda: tokenize("a photo of a dog"), 501)
    print(f"tokenizer build {build * 1e3:.1f} ms (the official helper pays this on every call)")
    print(f"one string, cached tokenizer: {one * 1e6:.1f} us")
    compare("ASCII captions", captions(2000, odd_every=0), args.repeats)
    compare("captions, 5% need ftfy", captions(2000), args.repeats)
    if FIXTURE.exists():
        rows = json.loads(FIXTURE.read_text())["cases"]["text.all"]["rows"]
        compare("official fixture strings (ftfy-heavy worst case)", [r["text"] for r in rows], args.repeats)


if __name__ == "__main__":
    main()
