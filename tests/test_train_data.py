"""Manifests, the layout readers on tiny fabricated datasets, loading through `bindkit.data`, and the data order."""

import json
import xml.etree.ElementTree as ET
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from bindkit import get_config
from bindkit.train import (
    FilePairs,
    audioset_pairs,
    ego4d_imu_pairs,
    llvip_pairs,
    read_manifest,
    sunrgbd_pairs,
    write_manifest,
)
from bindkit.train.readers import youtube_id
from bindkit.train.sampler import Plan

TINY = get_config("imagebind_tiny")


def _video(path, seconds=3.0, fps=10, with_audio=True, step=8):
    """An mp4 whose frame k is grey level step * k (so a frame's time can be read back) and a 440 Hz tone."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 48, 32, "yuv420p"
        a = c.add_stream("aac", rate=16000) if with_audio else None
        if a is not None:
            a.layout = "mono"
        for k in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(
                np.full((32, 48, 3), min(255, step * k), np.uint8), format="rgb24"
            )
            for p in v.encode(frame):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            t = np.arange(int(seconds * 16000)) / 16000
            wave = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
            for s in range(0, len(wave), 1024):
                af = av.AudioFrame.from_ndarray(wave[None, s : s + 1024], format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = 16000, s, Fraction(1, 16000)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)


def _grey(x):
    """Mean 0-255 grey level of a CLIP-normalised image batch (B, 3, H, W)."""
    mean, std = (
        torch.tensor([0.48145466, 0.4578275, 0.40821073]),
        torch.tensor([0.26862954, 0.26130258, 0.27577711]),
    )
    return ((x * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)) * 255).mean((1, 2, 3))


def test_manifests_jsonl_parquet_and_errors(tmp_path):
    rows = [{"image": "a.jpg", "depth": "a.png", "label": 1, "focal_length": 500.0},
            {"image": "b.jpg", "depth": "b.png", "label": 0, "focal_length": 520.0}]  # fmt: skip
    for name in ("m.jsonl", "m.parquet", "m.json"):
        path = tmp_path / name
        if name.endswith(".json"):
            path.write_text(json.dumps(rows))
        else:
            write_manifest(rows, path)
        assert read_manifest(path) == rows
        ds = FilePairs.from_manifest(("image", "depth"), path)
        assert ds.modalities == ("vision", "depth") and ds.items[0][1] == tmp_path / "b.jpg"
        assert ds.labels == [1, 0] and len(ds) == 2
    (tmp_path / "bad.jsonl").write_text('{"image": "a.jpg", "depth": "a.png"}\n{oops\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        read_manifest(tmp_path / "bad.jsonl")
    with pytest.raises(ValueError, match="'thermal'"):
        FilePairs.from_manifest(("image", "thermal"), tmp_path / "m.jsonl")


def test_audioset_style_videos_give_frame_and_audio_at_the_same_time(tmp_path):
    root = tmp_path / "audioset"
    (root / "eval").mkdir(parents=True)
    _video(root / "eval" / "Y--4gqARaEJE.mp4")
    _video(root / "eval" / "0_8-g2rof7E_000049.mp4")
    (root / "segs.csv").write_text("# Segments csv\n# num_ytids=2\n# YTID, start_seconds, end_seconds, positive_labels\n"
                                   '--4gqARaEJE, 0.000, 10.000, "/m/09x0r,/m/05zppz"\n')  # fmt: skip
    (root / "labels.csv").write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n'
    )
    rows = audioset_pairs(
        root / "eval", segments=root / "segs.csv", names=root / "labels.csv", times_per_video=3
    )
    assert [r["ytid"] for r in rows] == ["0_8-g2rof7E", "--4gqARaEJE"]
    assert rows[1]["label"] == ["Speech", "Male speech, man speaking"] and "label" not in rows[0]
    assert rows[0]["times"] == pytest.approx([1.0, 1.5, 2.0], abs=0.11)  # 2 s clips inside ~3 s
    ds = FilePairs(("video", "audio"), rows)
    assert ds.num_views().tolist() == [3, 3] and ds.view_name(0, 2).startswith("t=")
    frames = ds.load(0, np.array([0, 0]), np.array([0, 2]), TINY.encoders["vision"])
    assert frames.shape == (2, 3, 64, 64)
    want = [8 * round(rows[0]["times"][v] * 10) for v in (0, 2)]  # frame index = time * fps
    assert _grey(frames).tolist() == pytest.approx(want, abs=4)
    audio = ds.load(1, np.array([0, 1]), np.array([1, 1]), TINY.encoders["audio"])
    assert audio.shape == (2, 1, 64, 104)  # one clip per item, the tiny config's mel bins and frames
    assert youtube_id("Y--4gqARaEJE") == "--4gqARaEJE" and youtube_id("abc_000030") == "abc"


def _sun_sample(folder, mm, fx, scene):
    for sub in ("image", "depth_bfx", "depth"):
        (folder / sub).mkdir(parents=True)
    Image.fromarray(np.full((30, 40, 3), 128, np.uint8)).save(folder / "image" / "0000103.jpg")
    stored = ((mm << 3) | (mm >> 13)) & 0xFFFF  # SUN RGB-D's bit rotation (datasets.md)
    Image.fromarray(np.full((30, 40), stored, np.uint16)).save(folder / "depth_bfx" / "0000103.png")
    (folder / "intrinsics.txt").write_text(f"{fx} 0 20\n0 {fx} 15\n0 0 1\n")
    (folder / "scene.txt").write_text(scene + "\n")


def test_sunrgbd_reader_and_disparity(tmp_path):
    root = tmp_path / "SUNRGBD"
    _sun_sample(root / "kv1" / "NYUdata" / "NYU0001", 2000, 518.857901, "bedroom")
    _sun_sample(root / "realsense" / "lg" / "2014_10_24-15_44_58-1311000073", 1000, 600.0, "office")
    rows = sunrgbd_pairs(root)
    assert [r["label"] for r in rows] == ["bedroom", "office"]
    assert [r["baseline"] for r in rows] == [0.075, 0.095] and rows[1]["focal_length"] == 600.0
    assert len(sunrgbd_pairs(root, samples=["/n/fs/sun3d/data/SUNRGBD/kv1/NYUdata/NYU0001"])) == 1
    ds = FilePairs(("image", "depth"), rows, options={"depth": {"preset": "imagebind_issue134"}})
    depth = ds.load(1, np.array([0, 1]), np.array([0, 0]), TINY.encoders["depth"])
    assert depth.shape == (2, 1, 64, 64)
    want = [0.075 * 518.857901 / 2.0, 0.095 * 600.0 / 1.0]  # disparity = baseline * focal / metres
    assert depth[:, 0, 32, 32].tolist() == pytest.approx(want, rel=1e-4)


def test_llvip_reader_pairs_by_name_with_person_labels(tmp_path):
    root = tmp_path / "LLVIP"
    for kind in ("visible", "infrared"):
        (root / kind / "train").mkdir(parents=True)
        for stem in ("010001", "010002"):
            Image.fromarray(np.full((20, 24, 3), 90 if kind == "visible" else 200, np.uint8)).save(
                root / kind / "train" / f"{stem}.jpg")  # fmt: skip
    (root / "Annotations").mkdir()
    for stem, persons in (("010001", 2), ("010002", 0)):
        ann = ET.Element("annotation")
        for _ in range(persons):
            ET.SubElement(ET.SubElement(ann, "object"), "name").text = "person"
        ET.ElementTree(ann).write(root / "Annotations" / f"{stem}.xml")
    rows = llvip_pairs(root)
    assert [(r["persons"], r["label"]) for r in rows] == [(2, "person"), (0, "background")]
    thermal = FilePairs(("image", "thermal"), rows).load(
        1, np.array([1]), np.array([0]), TINY.encoders["thermal"]
    )
    assert thermal.shape == (1, 1, 64, 64) and float(thermal.mean()) == pytest.approx(200 / 255, abs=0.01)
    (root / "infrared" / "train" / "010002.jpg").unlink()
    with pytest.raises(ValueError, match="010002"):
        llvip_pairs(root)


def test_ego4d_imu_windows_next_to_video_frames(tmp_path):
    base = tmp_path / "ego4d" / "v2"
    (base / "imu").mkdir(parents=True)
    (base / "full_scale").mkdir()
    uid, other = "0ce20f1b-104c-48aa-a957-75f772238639", "11111111-2222-3333-4444-555555555555"
    meta = {"videos": [{"video_uid": uid, "has_imu": True, "scenarios": ["Cooking"]},
                       {"video_uid": other, "has_imu": True, "scenarios": ["Cooking", "Cleaning"]}], "clips": []}  # fmt: skip
    (base / "ego4d.json").write_text(json.dumps(meta))
    t = np.arange(0, 12.0, 0.005)  # 12 s at 200 Hz; a few empty canonical cells
    lines = [
        "component_idx,component_timestamp_ms,canonical_timestamp_ms,gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z"
    ]
    for k, s in enumerate(t):
        canon = "" if k in (5, 6, 7) else f"{s * 1000:.3f}"
        lines.append(f"0,{s * 1000:.3f},{canon},0.1,0.2,0.3,{s:.4f},-1.0,9.8")
    (base / "imu" / f"{uid}.csv").write_text("\n".join(lines) + "\n")
    _video(base / "full_scale" / f"{uid}.mp4", seconds=12.0, fps=5, with_audio=False, step=4)
    rows = ego4d_imu_pairs(tmp_path / "ego4d", window=5.0)
    assert [r["start"] for r in rows] == [0.0, 5.0] and [r["times"] for r in rows] == [[2.5], [7.5]]
    assert {r["label"] for r in rows} == {"Cooking"}  # the two-scenario video is left out, as in the paper
    ds = FilePairs(("video", "imu"), rows)
    imu = ds.load(1, np.array([0, 1]), np.array([0, 0]), TINY.encoders["imu"])
    assert imu.shape == (2, 6, 400)  # accel xyz, gyro xyz resampled to the tiny config's 400 samples
    assert imu[1, 0, 0].item() == pytest.approx(5.0, abs=0.01) and imu[1, 0, -1].item() == pytest.approx(
        9.99, abs=0.02
    )
    assert imu[0, 2, 10].item() == pytest.approx(9.8) and imu[0, 5, 10].item() == pytest.approx(0.3)
    frames = ds.load(0, np.array([0, 1]), np.array([0, 0]), TINY.encoders["vision"])
    assert _grey(frames).tolist() == pytest.approx([4 * 12, 4 * 38], abs=4)  # nearest frames to 2.5 s, 7.5 s


def test_plan_replicates_shards_and_draws_views():
    views = [np.full(10, 3), np.ones(7, dtype=np.int64)]
    one = Plan([10, 7], [2.5, 1.0], [4, 2], views, seed=5)
    assert one.steps_per_epoch == 25 // 4 + 7 // 2
    batches = one.epoch(0)
    counts = np.bincount(np.concatenate([b.items for b in batches if b.pair == 0]), minlength=10)
    assert counts.sum() == 24 and set(counts.tolist()) <= {2, 3}  # 2.5 passes, last partial batch dropped
    assert all(b.views.max() < 3 for b in batches if b.pair == 0) and all(
        b.views.max() == 0 for b in batches if b.pair
    )
    assert [b.items.tolist() for b in Plan([10, 7], [2.5, 1.0], [4, 2], views, seed=5).epoch(0)] == \
        [b.items.tolist() for b in batches]  # fmt: skip
    assert [b.items.tolist() for b in one.epoch(1)] != [b.items.tolist() for b in batches]
    ranks = [Plan([10, 7], [2.5, 1.0], [4, 2], views, seed=5, rank=r, world=2).epoch(0) for r in (0, 1)]
    for full, r0, r1 in zip(batches, *ranks, strict=True):  # every pair's batches split between the ranks
        assert (
            r0.pair == r1.pair == full.pair and r0.items.tolist() + r1.items.tolist() == full.items.tolist()
        )
    with pytest.raises(ValueError, match="batch size"):
        Plan([3], [1.0], [4], [np.ones(3)], seed=0)
    with pytest.raises(ValueError, match="divide"):
        Plan([10], [1.0], [3], [np.ones(10)], seed=0, world=2)


def test_a_run_from_a_manifest_of_video_files(tmp_path):
    """Frames (cached, one entry per time) and audio clips (loaded on the prefetch thread) from the same files."""
    from bindkit.train import PairConfig, TrainConfig, train

    for name in ("a", "b"):
        _video(tmp_path / f"{name}.mp4")
    write_manifest(audioset_pairs(tmp_path, times_per_video=2), tmp_path / "pairs.jsonl")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = train(TrainConfig(pairs=[PairConfig(("video", "audio"), str(tmp_path / "pairs.jsonl"), batch_size=2,
                                                  replication=2.0)], model="imagebind_tiny", steps=3,
                                run_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), progress=False))  # fmt: skip
    finally:
        torch.set_num_threads(n)
    assert res.step == 3 and res.model_dir is not None and set(res.model.encoders) == {"vision", "audio"}
    (folder,) = (tmp_path / "cache").glob("vision-*")
    keys = sorted(line for f in folder.glob("*.keys") for line in f.read_text().splitlines())
    assert len(keys) == 4 and all(":t=" in k for k in keys)  # 2 files x 2 times


def test_augmented_views_of_one_time_videos_reuse_that_time(tmp_path):
    """A video source with one time per row (Ego4D windows, times_per_video=1) still gets `views` augmented views."""
    from bindkit.train import PairConfig, TrainConfig, train

    for name, step in (("a", 8), ("b", 6)):
        _video(tmp_path / f"{name}.mp4", step=step)
    write_manifest(audioset_pairs(tmp_path, times_per_video=1), tmp_path / "pairs.jsonl")
    ds = FilePairs.from_manifest(("video", "audio"), tmp_path / "pairs.jsonl")
    assert ds.num_views().tolist() == [1, 1]
    one, three = (ds.load(0, np.array([0]), np.array([v]), TINY.encoders["vision"]) for v in (0, 3))
    assert torch.equal(one, three) and ds.view_name(0, 0) != ds.view_name(0, 3)
    pair = PairConfig(("video", "audio"), str(tmp_path / "pairs.jsonl"), batch_size=2, augment=True, views=3)
    res = train(TrainConfig(pairs=[pair], model="imagebind_tiny", steps=2, run_dir=str(tmp_path / "run"),
                            cache_dir=str(tmp_path / "cache"), progress=False))  # fmt: skip
    assert res.step == 2
    (folder,) = (tmp_path / "cache").glob("vision-*")
    keys = {line for f in folder.glob("*.keys") for line in f.read_text().splitlines()}
    assert len(keys) == 2 * 3  # 2 files x 3 augmented views of their one time


def test_file_hashes_follow_content_even_when_mtime_is_restored(tmp_path):
    import os

    from bindkit.train.data import FileHasher

    f = tmp_path / "x.bin"
    f.write_bytes(b"aaaa")
    index = tmp_path / "hashes.jsonl"
    first = FileHasher(index)
    h1 = first.hash(f)
    first.save()
    st = f.stat()
    f.write_bytes(b"bbbb")  # same size; mtime set back as a copy tool might
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = FileHasher(index)
    assert again.hash(f) != h1 and again.hash(tmp_path / "x.bin") == again.hash(f)
    assert FileHasher(index).known  # the index was read back


def test_binding_from_files_fits_and_stores_the_loader_normalisation(tmp_path):
    """Depth bound from files: mean/std fitted on the training maps, stored in the saved model's config."""
    from bindkit import load_model
    from bindkit.data import load_depth
    from bindkit.train import PairConfig, TensorPairs, TrainConfig, Trainer, train

    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
        np.save(tmp_path / f"d{i}.npy", rng.uniform(0.5, 5.0, (40, 48)).astype(np.float32))  # metres
        rows.append({"image": f"im{i}.png", "depth": f"d{i}.npy"})
    write_manifest(rows, tmp_path / "pairs.jsonl")

    def run(name, data, **kw):
        pair = PairConfig(("vision", "depth"), data, batch_size=3, replication=1.0, augment=False)
        return TrainConfig(pairs=[pair], model="imagebind_tiny", steps=1, run_dir=str(tmp_path / name),
                           cache_dir=str(tmp_path / "cache"), progress=False, **kw)  # fmt: skip

    raw = load_depth([tmp_path / f"d{i}.npy" for i in range(6)], size=TINY.encoders["depth"].input_shape[-1])
    res = train(run("a", str(tmp_path / "pairs.jsonl")))
    stored = load_model(res.model_dir).config.encoders["depth"].preprocess
    assert stored["mean"] == pytest.approx(raw.double().mean().item(), rel=1e-5)
    assert stored["std"] == pytest.approx(raw.double().std().item(), rel=1e-3)
    tr = Trainer(run("b", str(tmp_path / "pairs.jsonl")))
    x = tr._load(0, 1, np.arange(6), np.zeros(6, dtype=np.int64))  # what training feeds the depth encoder
    assert abs(x.mean().item()) < 1e-4 and x.std().item() == pytest.approx(1.0, abs=1e-3)
    assert Trainer(run("c", str(tmp_path / "pairs.jsonl"), fit_normalization=0)).fitted == {}
    tensors = TensorPairs(("vision", "depth"), torch.randn(6, 3, 32, 32), torch.randn(6, 1, 32, 32))
    assert Trainer(run("d", tensors)).fitted == {}  # model inputs already: the caller's normalisation stands
    # A pretrained depth encoder (here a saved model with its constants removed) keeps the inputs it was trained on.
    from bindkit import save_model

    plain = load_model(res.model_dir)
    plain.config = plain.config.replace_encoder("depth", preprocess={})
    plain.encoders["depth"].cfg = plain.config.encoders["depth"]
    save_model(plain, tmp_path / "pretrained")
    assert Trainer(run("e", str(tmp_path / "pairs.jsonl"), init=str(tmp_path / "pretrained"))).fitted == {}
