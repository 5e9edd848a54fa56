"""The data order: which pair, which items and which views each step uses, as a pure function of (seed, epoch).

An epoch holds `round(len * replication)` samples of each pair: whole shuffled passes over the data, then a
shuffled part-pass for the fraction (open_clip's upsampling factors; passes follow each other, so an item repeats
inside a batch only where two passes meet). Each pair's samples are cut into global batches (the last partial one
dropped), and the batches of all pairs are interleaved in a seeded random order: one pair per step. Every rank
computes the same plan and keeps its own contiguous slice of each global batch, which shards every pair's data.
Each epoch also draws one view per item (an augmentation index or a video time). Resuming needs only
(epoch, position), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Batch:
    """One step's data: the pair's index, this rank's item indices and their views."""

    pair: int
    items: np.ndarray  # (b,) int64
    views: np.ndarray  # (b,) int64


class Plan:
    """Epoch plans for several pairs; `sizes`, `replication`, `batch` and `views` are per pair."""

    def __init__(self, sizes: list[int], replication: list[float], batch: list[int], views: list[np.ndarray],
                 seed: int, rank: int = 0, world: int = 1, names: list[str] | None = None):  # fmt: skip
        self.sizes, self.replication, self.batch, self.views = sizes, replication, batch, views
        self.seed, self.rank, self.world = seed, rank, world
        self.samples = [int(round(n * r)) for n, r in zip(sizes, replication, strict=True)]
        self.batches = [s // b for s, b in zip(self.samples, batch, strict=True)]
        names = names or [str(i) for i in range(len(sizes))]
        short = [f"{names[i]} ({self.samples[i]} samples per epoch < batch {batch[i]})"
                 for i in range(len(sizes)) if self.batches[i] == 0]  # fmt: skip
        if short:
            raise ValueError("a pair has fewer samples per epoch than its batch size; lower batch_size or raise "
                             "replication: " + "; ".join(short))  # fmt: skip
        uneven = [f"{names[i]} (batch {b})" for i, b in enumerate(batch) if b % world]
        if uneven:
            raise ValueError(f"batch sizes must divide by the {world} ranks: {', '.join(uneven)}")

    @property
    def steps_per_epoch(self) -> int:
        """Global batches (optimizer steps) in one epoch."""
        return sum(self.batches)

    def epoch(self, e: int) -> list[Batch]:
        """This rank's batches of epoch `e`, in order."""
        rng = np.random.default_rng([self.seed, e])
        per_pair = []
        for n, s, b, v in zip(self.sizes, self.samples, self.batch, self.views, strict=True):
            order = np.concatenate([rng.permutation(n) for _ in range(-(-s // n))])[:s]
            draw = np.floor(rng.random(n) * v).astype(np.int64)  # one view per item for this epoch
            per_pair.append((order[: (s // b) * b].reshape(-1, b), draw))
        schedule = np.concatenate([np.full(k, i) for i, k in enumerate(self.batches)])
        rng.shuffle(schedule)
        counters = [0] * len(self.sizes)
        out = []
        for p in schedule:
            rows, draw = per_pair[p]
            items = rows[counters[p]]
            counters[p] += 1
            local = np.array_split(items, self.world)[self.rank]
            out.append(Batch(int(p), local, draw[local]))
        return out
