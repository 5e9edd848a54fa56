"""The frozen-anchor cache: store semantics, hits across runs, invalidation by file content and by anchor weights,
seeded augmented views, and training through the cache equal to training without it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from _train_utils import config, small_model, world
from bindkit.train import Trainer, train
from bindkit.train.cache import AnchorCache, fingerprint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_store_adds_gathers_across_shards_and_ignores_torn_writes(tmp_path):
    c = AnchorCache(tmp_path / "c")
    a, b = np.arange(12, dtype=np.float32).reshape(3, 4), -np.arange(8, dtype=np.float32).reshape(2, 4)
    c.add(["a0", "a1", "a2"], a)
    c.add(["b0", "b1"], b)
    assert c.missing(["a1", "zz", "b0"]) == [1]
    got = c.gather(c.rows(["b1", "a0", "a2", "b0"]))
    assert torch.equal(got, torch.from_numpy(np.stack([b[1], a[0], a[2], b[0]])))
    (tmp_path / "c" / "shard-torn.npy").write_bytes(b"")  # data without its keys file: not a shard
    np.save(tmp_path / "c" / "shard-short.npy", a)
    (tmp_path / "c" / "shard-short.keys").write_text("x\n")  # keys that do not match the rows: ignored
    again = AnchorCache(tmp_path / "c")
    assert len(again) == 5 and torch.equal(again.gather(again.rows(["a1"])), torch.from_numpy(a[1:2]))


def test_fingerprint_tracks_weights_and_settings():
    enc = small_model().encoders["vision"]
    fp = fingerprint(enc, {"precision": "fp32"})
    assert fp == fingerprint(enc, {"precision": "fp32"}) and fp != fingerprint(enc, {"precision": "bf16"})
    with torch.no_grad():
        enc.head.proj.weight[0, 0] += 1e-6
    assert fingerprint(enc, {"precision": "fp32"}) != fp


def _files(root, n=8):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / f"im{i}.png")
        np.save(root / f"d{i}.npy", rng.uniform(0.5, 5.0, (40, 48)).astype(np.float32))  # metres
        rows.append({"image": f"im{i}.png", "depth": f"d{i}.npy", "label": i % 2})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "pairs.jsonl"


def _count_embeds(monkeypatch):
    calls = []
    orig = Trainer._embed_frozen

    def spy(self, i, s, items, views):
        calls.append(len(items))
        return orig(self, i, s, items, views)

    monkeypatch.setattr(Trainer, "_embed_frozen", spy)
    return calls


def test_hits_across_runs_and_invalidation_by_file_and_by_anchor(tmp_path, monkeypatch):
    manifest = _files(tmp_path)
    calls = _count_embeds(monkeypatch)
    cfg = lambda run, **kw: config(tmp_path, run, data=str(manifest), pair={"batch_size": 4, "augment": True,  # noqa: E731
                                                                             "views": 2}, steps=2, **kw)  # fmt: skip
    Trainer(cfg("a"), model=small_model())
    assert sum(calls) == 8 * 2  # every image, two seeded views
    calls.clear()
    tr = Trainer(cfg("b"), model=small_model())
    assert sum(calls) == 0  # a new run over the same files and anchor: all hits
    side = tr.sides[0][0]
    assert side.frozen and side.rows.shape == (8, 2) and len(set(side.rows.ravel())) == 16
    # Views differ (seeded crops), and the cached rows equal a fresh embedding of the same view.
    emb = side.cache.gather(side.rows[[3, 3], [0, 1]])
    assert not torch.allclose(emb[0], emb[1])
    ref = tr._embed_frozen(0, 0, np.array([3, 3]), np.array([0, 1]))
    assert torch.allclose(emb, ref, atol=1e-5)
    # A changed file is a miss for that file only.
    calls.clear()
    Image.fromarray(np.zeros((40, 48, 3), dtype=np.uint8)).save(tmp_path / "im5.png")
    Trainer(cfg("c"), model=small_model())
    assert sum(calls) == 2
    # A changed anchor (other weights) misses everything and uses another folder.
    calls.clear()
    Trainer(cfg("d"), model=small_model(seed=7))
    assert sum(calls) == 16
    assert len(list((tmp_path / "cache").glob("vision-*"))) == 2


@pytest.mark.parametrize("augment", [False, True])
def test_training_through_the_cache_equals_training_without_it(tmp_path, augment, monkeypatch):
    pair = {"augment": augment, "views": 3}
    reads: list[np.ndarray] = []
    gather = AnchorCache.gather

    def spy(self, rows):
        reads.append(np.array(rows))
        return gather(self, rows)

    monkeypatch.setattr(AnchorCache, "gather", spy)
    a = train(config(tmp_path, "cached", data=world(48), pair=pair, steps=4), model=small_model())
    # Written: one cache folder for the frozen image encoder, holding every item's every view.
    (folder,) = (tmp_path / "cache").glob("vision-*")
    assert len(AnchorCache(folder)) == 48 * (3 if augment else 1)
    # Read: each of the 4 steps took its 16 anchor embeddings from the cache, as distinct rows.
    assert [len(r) for r in reads] == [16] * 4 and all(len(set(r.tolist())) == 16 for r in reads)
    reads.clear()
    b = train(
        config(tmp_path, "direct", data=world(48), pair=pair, steps=4, cache=False), model=small_model()
    )
    assert not reads  # without the cache the anchor is encoded every step
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.allclose(sa[k], sb[k], atol=2e-5) for k in sa)
