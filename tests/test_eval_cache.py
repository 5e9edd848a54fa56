"""The on-disk embedding cache: hits, misses, invalidation by content, failures not stored."""

import os

import numpy as np
import pytest

from bindkit.evaluate import cache as C
from bindkit.evaluate.readers.base import Item


class Counter:
    """A compute function that records which positions it was asked for."""

    def __init__(self, dim: int = 4):
        self.calls: list[list[int]] = []
        self.dim = dim

    def __call__(self, pos):
        self.calls.append(list(pos))
        return np.stack([np.full(self.dim, float(p)) for p in pos])


def test_miss_then_hit_and_per_model_namespace(tmp_path):
    c = C.EmbeddingCache(tmp_path)
    f = Counter()
    emb, st = c.get_or_compute("m1", "ds", ["a", "b", "c"], f)
    assert (st.hits, st.misses) == (0, 3) and f.calls == [[0, 1, 2]]
    # a fresh instance reads what the first one stored
    again, st = C.EmbeddingCache(tmp_path).get_or_compute("m1", "ds", ["c", "a"], f)
    assert (st.hits, st.misses) == (2, 0) and len(f.calls) == 1
    np.testing.assert_array_equal(again, emb[[2, 0]])
    _, st = c.get_or_compute("m2", "ds", ["a"], f)  # another model: nothing shared
    assert st.misses == 1
    _, st = c.get_or_compute("m1", "ds", ["a", "d", "d"], f)  # a repeated new key is computed once
    assert f.calls[-1] == [1] and (st.hits, st.misses) == (1, 2)


def test_flushes_in_shards_and_skips_failed_rows(tmp_path):
    c = C.EmbeddingCache(tmp_path)

    def half_fail(pos):
        out = np.ones((len(pos), 3))
        out[::2] = np.nan  # rows that failed to load
        return out

    emb, st = c.get_or_compute("m", "ds", [f"k{i}" for i in range(5)], half_fail, flush_every=2)
    assert np.isnan(emb[[0, 2, 4]]).all() and st.misses == 5
    assert len(list((tmp_path / "m" / "ds").glob("shard-*.npz"))) == 2  # chunks [k0 k1] [k2 k3]; [k4] failed
    assert set(c.load("m", "ds")) == {"k1", "k3"}


def test_file_hash_is_memoised_and_content_changes_invalidate(tmp_path, monkeypatch):
    f = tmp_path / "a.wav"
    f.write_bytes(b"one")
    reads = []
    real = C.sha256_file
    monkeypatch.setattr(C, "sha256_file", lambda p: reads.append(p) or real(p))
    c = C.EmbeddingCache(tmp_path / "cache")
    k1 = c.item_key("audio", Item(f))
    assert c.item_key("audio", Item(f)) == k1 and len(reads) == 1  # unchanged stat: not re-read
    c.save_index()
    assert C.EmbeddingCache(tmp_path / "cache").file_hash(f) == real(f) and len(reads) == 1  # memo persisted
    f.write_bytes(b"two")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    k2 = c.item_key("audio", Item(f))
    assert k2 != k1 and len(reads) == 2
    assert c.item_key("audio", Item(f, box=(0, 0, 2, 2))) != k2  # where in the file counts too
    assert c.item_key("depth", Item(f)) != k2


def test_stored_rows_come_back_exactly(tmp_path):
    c = C.EmbeddingCache(tmp_path)
    x = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    c.get_or_compute("m", "ns", [str(i) for i in range(6)], lambda pos: x[pos])
    got, st = c.get_or_compute("m", "ns", [str(i) for i in range(6)], lambda pos: pytest.fail("recomputed"))
    np.testing.assert_array_equal(got, x)
