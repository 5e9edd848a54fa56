"""The store: modality detection, embedding (idempotent, resumable, failures listed), search and the ANN index."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bindkit.store import DetectError, QueryError, Store, detect_modality, embed_paths, search
from bindkit.store import embed as embed_mod
from bindkit.store.collect import collect
from bindkit.store.search import query_vector
from store_fixtures import shared_world

pytest.importorskip("lancedb")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny random model, two files of every kind plus two bad ones, and a store built from them."""
    return shared_world(tmp_path_factory)


def stored(db: Path, model) -> dict[str, dict]:
    return {
        r["path"]: r
        for r in Store.for_model(db, model).rows(columns=("path", "modality", "vector")).to_pylist()
    }


# ---------------------------------------------------------------- detection


def test_detect_rules(tmp_path):
    (tmp_path / "depth").mkdir()
    (tmp_path / "misc").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "misc" / "photo.png")
    Image.new("L", (8, 8)).save(tmp_path / "misc" / "gray.png")
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "misc" / "raw16.png")
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "depth" / "raw16.png")
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "misc" / "scan_thermal.png")
    np.save(tmp_path / "misc" / "a.npy", np.zeros((100, 6)))
    np.save(tmp_path / "misc" / "b.npy", np.zeros((6, 50)))
    np.save(tmp_path / "misc" / "c.npy", np.zeros((30, 40)))
    np.save(tmp_path / "misc" / "d.npy", np.zeros((2, 3, 4)))
    (tmp_path / "misc" / "imu.csv").write_text("t,ax,ay,az,gx,gy,gz\n0,1,2,3,4,5,6\n")
    cases = {
        "misc/photo.png": "image", "misc/gray.png": "image", "depth/raw16.png": "depth",
        "misc/scan_thermal.png": "thermal", "misc/a.npy": "imu", "misc/b.npy": "imu", "misc/c.npy": "depth",
        "misc/imu.csv": "imu",
    }  # fmt: skip
    for rel, kind in cases.items():
        assert detect_modality(tmp_path / rel) == kind, rel
    assert detect_modality("x/sound.wav") == "audio" and detect_modality("x/clip.MP4") == "video"
    assert detect_modality("audio/clip.mp4") == "audio"  # the sound track, by folder
    assert detect_modality("x/t.txt") == "text"
    with pytest.raises(DetectError, match="ambiguous.*depth or thermal"):
        detect_modality(tmp_path / "misc" / "raw16.png")
    assert detect_modality(tmp_path / "misc" / "raw16.png", override="thermal") == "thermal"
    assert (
        detect_modality("x/sound.wav", override="depth") == "audio"
    )  # override only where it is a candidate
    with pytest.raises(DetectError, match="neither of depth, imu"):
        detect_modality(tmp_path / "misc" / "d.npy")
    with pytest.raises(DetectError, match="unknown file type"):
        detect_modality("x/file.docx")


def test_collect_manifests(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"path": "a.wav", "label": "7", "speaker": "s1"}) + "\n"
        + json.dumps({"text": "the number seven", "label": "7"}) + "\n"
        + json.dumps({"path": "missing.png"}) + "\n"
    )  # fmt: skip
    (tmp_path / "m.csv").write_text("path,label,modality\na.wav,3,audio\n")
    entries, skipped, roots, failed = collect([tmp_path / "m.jsonl", tmp_path / "m.csv"])
    by = {(e.kind, e.label): e for e in entries}
    assert by[("audio", "3")].path == str(
        tmp_path / "a.wav"
    )  # the CSV row replaced the JSONL one (same path)
    assert by[("text", "7")].text == "the number seven" and by[("text", "7")].path.endswith("m.jsonl#L2")
    assert skipped == [(f"{tmp_path / 'm.jsonl'}:3", "file not found")]
    assert roots == [str(tmp_path / "m.jsonl"), str(tmp_path / "m.csv")] and failed == []


# ---------------------------------------------------------------- embedding


def test_embed_report_lists_failures(world):
    r = world["report"]
    assert r.total == 15 and r.embedded == 14 and r.rows == 14
    assert [Path(p).name for p, _ in r.failed] == ["broken.png"]
    assert r.skipped == [(str(world["root"] / "media" / "notes.xyz"), "unknown file type '.xyz'")]
    assert "broken.png" in r.summary() and "notes.xyz" in r.summary()


def test_vectors_match_loaders_at_model_sizes(world):
    """Stored vectors equal the model's embedding of each loader's output at sizes written here by hand."""
    from bindkit import data

    m, media = world["model"], world["media"]
    calls = {
        "image": ("vision", lambda p: data.load_images(p, size=64)),
        "video": ("vision", lambda p: data.load_videos(p, size=64, frames_per_clip=2)),
        "audio": ("audio", lambda p: data.load_audio(p, num_mel_bins=64, target_length=104)),
        "depth": ("depth", lambda p: data.load_depth(p, size=64)),
        "thermal": ("thermal", lambda p: data.load_thermal(p, size=64)),
        "imu": ("imu", lambda p: data.load_imu(p, length=400)),
        "text": ("text", lambda p: data.tokenize([x.read_text() for x in p], context_length=32)),
    }
    rows = stored(world["db"], m)
    for kind, (enc, load) in calls.items():
        want = m.encode({enc: load(media[kind])})[enc].numpy()
        got = np.stack([rows[str(p)]["vector"] for p in media[kind]])
        assert all(rows[str(p)]["modality"] == kind for p in media[kind])
        np.testing.assert_allclose(got, want, atol=2e-5, err_msg=kind)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_rerun_is_idempotent_and_tracks_changes(world, tmp_path):
    media = tmp_path / "media"
    shutil.copytree(world["root"] / "media", media)
    (media / "images" / "broken.png").unlink()
    db, m = tmp_path / "db", world["model"]
    first = embed_paths([media], db, m, progress=False)
    assert (first.embedded, first.failed) == (14, [])
    again = embed_paths([media], db, m, progress=False)
    assert (again.embedded, again.unchanged, again.updated, again.deleted) == (0, 14, 0, 0)

    before = stored(db, m)
    img0, img1 = media / "images" / "img0.png", media / "images" / "img1.png"
    shutil.copy(img1, img0)  # new content
    os.utime(media / "audio" / "tone0.wav", (1e9, 1e9))  # same content, new mtime
    (media / "depth" / "scan1.npy").unlink()
    (media / "text" / "new.txt").write_text("a new note")
    r = embed_paths([media], db, m, progress=False)
    assert (r.embedded, r.updated, r.deleted, r.unchanged, r.rows) == (2, 1, 1, 11, 14)
    after = stored(db, m)
    np.testing.assert_allclose(after[str(img0)]["vector"], before[str(img1)]["vector"], atol=1e-6)
    assert (
        after[str(media / "audio" / "tone0.wav")]["vector"]
        == before[str(media / "audio" / "tone0.wav")]["vector"]
    )
    assert str(media / "depth" / "scan1.npy") not in after
    # past the threshold the run ends with an ANN index; later rows are found before they are indexed
    assert embed_paths([media], db, m, index_min_rows=10, progress=False).indexed
    (media / "text" / "later.txt").write_text("written after the index")
    r = embed_paths([media], db, m, index_min_rows=10, progress=False)
    assert (r.embedded, r.indexed) == (1, True)
    assert search(db, m, [("text", "written after the index", 1.0)], k=1)[0].path == str(
        media / "text" / "later.txt"
    )


def test_interrupted_run_keeps_written_batches(world, tmp_path, monkeypatch):
    media = world["root"] / "media"
    db, m = tmp_path / "db", world["model"]
    real, calls = embed_mod._write, []

    def write_then_die(*a, **kw):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during the third batch
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(embed_mod, "_write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        embed_paths([media], db, m, batch_size=2, progress=False)
    monkeypatch.setattr(embed_mod, "_write", real)
    kept = Store.for_model(db, m).count()
    assert kept == 4  # two committed batches of two
    r = embed_paths([media], db, m, batch_size=2, progress=False)
    assert (r.unchanged, r.embedded, r.rows) == (4, 10, 14)


# ---------------------------------------------------------------- search


def test_search_queries_and_filters(world):
    db, m, media = world["db"], world["model"], world["media"]
    hits = search(db, m, [("file", str(media["audio"][1]), 1.0)], k=3)
    assert hits[0].path == str(media["audio"][1]) and hits[0].score == pytest.approx(1.0, abs=1e-5)
    text = media["text"][0].read_text()
    hits = search(db, m, [("text", text, 1.0)], k=1)
    assert hits[0].path == str(media["text"][0]) and hits[0].text == text
    hits = search(db, m, [("text", text, 1.0)], modalities=["depth", "vision"], k=20)
    assert len(hits) == 6 and {h.modality for h in hits} == {"depth", "image", "video"}
    with pytest.raises(QueryError, match="file not found"):
        search(db, m, [("audio", "/no/such.wav", 1.0)])
    with pytest.raises(QueryError, match="cancel out"):
        search(db, m, [("text", "x", 1.0), ("text", "x", -1.0)])


def test_weighted_query_matches_numpy(world):
    """Embedding arithmetic: the ranking equals a numpy re-derivation over every stored vector."""
    db, m, media = world["db"], world["model"], world["media"]
    rows = stored(db, m)
    paths = list(rows)
    V = np.stack([rows[p]["vector"] for p in paths])  # (N, D)
    a, t = rows[str(media["image"][0])]["vector"], rows[str(media["imu"][1])]["vector"]
    q = 0.7 * np.asarray(a) - 0.4 * np.asarray(t)
    q /= np.linalg.norm(q)
    want = [paths[i] for i in np.argsort(-(V @ q))[:6]]
    from bindkit.store.store import item_id

    queries = [("id", item_id(str(media["image"][0])), 0.7), ("imu", str(media["imu"][1]), -0.4)]
    hits = search(db, m, queries, k=6)
    assert [h.path for h in hits] == want
    np.testing.assert_allclose([h.score for h in hits], np.sort(V @ q)[::-1][:6], atol=1e-5)
    np.testing.assert_allclose(query_vector(m, Store.for_model(db, m), queries), q, atol=1e-5)


# ---------------------------------------------------------------- index


def test_ann_index_recall_and_filters(tmp_path):
    """Above the threshold an IVF-PQ index is built; with refinement its top 10 agree with exact search."""
    rng = np.random.default_rng(0)
    n, d = 4000, 32
    centres = rng.normal(size=(40, d))
    X = centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    store = Store(tmp_path / "db", "vectors", d)
    kinds = np.array(["image", "audio"])[np.arange(n) % 2]
    rows = [dict(id=f"{i:06d}", path=f"/x/{i}", source="/x", modality=str(kinds[i]), sha256="", model="m",
                 mtime=0.0, size=0, label=str(i % 10), meta="{}", text="", vector=X[i].tolist()) for i in range(n)]  # fmt: skip
    store.upsert(rows[: n // 2])
    assert not store.ensure_index(min_rows=n) and not store.has_index()
    store.upsert(rows[n // 2 :])
    assert store.ensure_index(min_rows=n) and store.has_index()
    Q = X[rng.choice(n, 20, replace=False)] + 0.05 * rng.normal(size=(20, d)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    recall = []
    for q in Q:
        exact = {f"{i:06d}" for i in np.argsort(-(X @ q))[:10]}
        recall.append(len(exact & {h.id for h in store.search(q, 10)}) / 10)
    assert np.mean(recall) >= 0.9
    hits = store.search(Q[0], 10, modalities=["audio"], where="label = '3'")
    assert len(hits) == 10 and all(h.modality == "audio" and h.label == "3" for h in hits)


# ---------------------------------------------------------------- torchrun


def test_torchrun_two_ranks_fill_one_table(world, tmp_path):
    """Two CPU ranks each embed half the files into one table; the result equals the one-process store."""
    import subprocess
    import sys

    media, db = tmp_path / "media", tmp_path / "db"
    for sub in ("images", "imu", "text"):  # a subset keeps the two processes' work small
        shutil.copytree(world["root"] / "media" / sub, media / sub)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "bindkit", "embed", str(media), "--store", str(db), "--model", str(world["model_dir"]),
           "--batch-size", "2", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "6 embedded" in out.stdout and "1 failed" in out.stdout, out.stdout
    got, want = stored(db, world["model"]), stored(world["db"], world["model"])
    assert len(got) == 6
    for p, row in got.items():
        twin = str(world["root"] / "media" / Path(p).relative_to(media))
        np.testing.assert_allclose(row["vector"], want[twin]["vector"], atol=2e-5)
    # a second parallel run replaces a changed file's row (no duplicate) and drops a deleted one
    shutil.copy(media / "images" / "img1.png", media / "images" / "img0.png")
    (media / "text" / "note1.txt").unlink()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and "1 embedded" in out.stdout and "1 deleted" in out.stdout, (
        out.stdout + out.stderr
    )
    ids = Store.for_model(db, world["model"]).rows(columns=("id",))["id"].to_pylist()
    assert len(ids) == len(set(ids)) == 5
    img0 = stored(db, world["model"])[str(media / "images" / "img0.png")]["vector"]
    np.testing.assert_allclose(img0, want[str(world["media"]["image"][1])]["vector"], atol=2e-5)
