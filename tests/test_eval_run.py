"""`run_eval` end to end on fabricated datasets with a small random-weight bindkit model.

The numbers are checked against the same protocol computed directly (loaders -> model.encode -> protocol), and the
second run must come entirely from the cache with identical numbers.
"""

import json
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import bindkit
from bindkit import data
from bindkit import evaluate as E
from bindkit.evaluate.embed import load_items
from bindkit.evaluate.readers import Item

COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}


def _wav(path: Path, freq: float, seconds: float = 2.2, rate: int = 16000):
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate), w.writeframes(pcm.tobytes())


def _images(root: Path, rng):
    for split, n in (("train", 3), ("test", 2)):
        for name, rgb in COLORS.items():
            for i in range(n):
                a = np.clip(np.array(rgb) + rng.normal(0, 20, size=(40, 48, 3)), 0, 255).astype(np.uint8)
                p = root / split / name / f"{i}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(a).save(p)


def _esc(root: Path):
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in (1, 2):
        for target, (cat, f) in enumerate((("dog", 300.0), ("sea_waves", 1200.0))):
            name = f"{fold}-{target}-A-{target}.wav"
            _wav(root / "audio" / name, f * fold)
            rows.append(f"{name},{fold},{target},{cat},False,{target},A")
    (root / "meta").mkdir(parents=True)
    (root / "meta/esc50.csv").write_text("\n".join(rows))


def _llvip(root: Path, rng):
    (root / "Annotations").mkdir(parents=True)
    (root / "infrared/test").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, size=(96, 128), dtype=np.uint8)).save(
        root / "infrared/test/190001.jpg"
    )
    (root / "Annotations/190001.xml").write_text(
        "<annotation><size><width>128</width><height>96</height><depth>1</depth></size><object><name>person</name>"
        "<bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax><ymax>70</ymax></bndbox></object></annotation>"
    )


def _nyud(root: Path, rng):
    for i, scene in enumerate(["bedroom", "kitchen", "cafe"]):
        (root / "test/depth").mkdir(parents=True, exist_ok=True)
        (root / "test/scene_class").mkdir(parents=True, exist_ok=True)
        mm = rng.integers(500, 4000, size=(48, 64)).astype(np.uint16)
        Image.fromarray(mm).save(root / f"test/depth/{i:04d}.png")
        (root / f"test/scene_class/{i:04d}.txt").write_text(scene)


def _ego4d(root: Path):
    (root / "v2/imu").mkdir(parents=True)
    meta = {"videos": [{"video_uid": "v1", "has_imu": True, "scenarios": ["Cooking"],
                        "video_metadata": {"video_duration_sec": 10.0}},
                       {"video_uid": "v2", "has_imu": True, "scenarios": ["Cleaning / laundry"],
                        "video_metadata": {"video_duration_sec": 5.0}}]}  # fmt: skip
    (root / "v2/ego4d.json").write_text(json.dumps(meta))
    for uid, f in (("v1", 1.0), ("v2", 3.0)):
        t = np.arange(0, 10000, 5.0)
        lines = [
            "component_idx,component_timestamp_ms,canonical_timestamp_ms,gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z"
        ]
        lines += [f"0,{ms},{ms},{np.sin(f * ms / 1e3)},0,0,{np.cos(f * ms / 1e3)},0,9.8" for ms in t]
        (root / f"v2/imu/{uid}.csv").write_text("\n".join(lines))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalworld")
    rng = np.random.default_rng(0)
    _images(root / "colors", rng)
    _esc(root / "ESC-50-master")
    _llvip(root / "LLVIP", rng)
    _nyud(root / "nyud", rng)
    _ego4d(root / "ego4d")
    torch.manual_seed(0)
    model = bindkit.ImageBind(bindkit.get_config("imagebind_test")).eval()
    bindkit.save_model(model, root / "model")
    return root, bindkit.load_model(root / "model")


def test_folder_zero_shot_matches_direct_computation_and_reruns_from_cache(world, tmp_path, capsys):
    root, model = world
    kw = dict(cache_dir=tmp_path / "cache", progress=False, out=tmp_path / "r.json")
    rep = E.run_eval(E.EvalConfig(["folder"], root / "colors", root / "model", **kw))
    m = rep["tasks"]["folder"]["metrics"]
    # direct: the test split, loaders, encode, CLIP class embeddings, zero-shot
    files = sorted((root / "colors/test").glob("*/*.png"))
    classes = sorted(COLORS)
    labels = [classes.index(p.parent.name) for p in files]
    x = model.encode({"vision": data.load("image", files, config=model.config)})["vision"]

    def enc_text(t):
        return model.encode({"text": data.tokenize(t, context_length=77)})["text"]

    w, groups = E.class_embeddings(enc_text, classes)
    ref = E.zero_shot(x, labels, w, groups)
    assert m["top1"] == pytest.approx(ref["top1"]) and m["mean_per_class_recall"] == pytest.approx(
        ref["mean_per_class_recall"]
    )
    assert m["n"] == 6 and m["chance"] == pytest.approx(100 / 3)
    assert rep["tasks"]["folder"]["cache"]["misses"] == 15 + 3 * 80  # 15 images (both splits) + prompts
    out = capsys.readouterr().out
    assert (
        "folder" in out and "top1" in out and json.loads((tmp_path / "r.json").read_text())["tasks"]["folder"]
    )
    again = E.run_eval(E.EvalConfig(
        ["folder", "folder-fewshot"], root / "colors", root / "model", **kw, shots=(1, 2), seeds=(0, 1)
    ))
    assert again["tasks"]["folder"]["cache"]["misses"] == 0
    assert again["tasks"]["folder"]["metrics"]["top1"] == m["top1"]
    fs = again["tasks"]["folder-fewshot"]
    assert fs["cache"]["misses"] == 0 and len(fs["metrics"]["k=2"]["runs"]) == 2


def test_paper_tasks_table2_layout(world, tmp_path, capsys):
    root, _ = world
    roots = {
        "esc50": root / "ESC-50-master",
        "llvip": root / "LLVIP",
        "nyud": root / "nyud",
        "ego4d": root / "ego4d",
    }
    rep = E.run_eval(E.EvalConfig(
        list(roots), roots, root / "model", cache_dir=tmp_path / "c", progress=False, templates=["a {}."]
    ))
    t = rep["tasks"]
    assert set(t["esc50"]["metrics"]["folds"]) == {1, 2} and t["esc50"]["metrics"]["n"] == 4
    assert t["llvip"]["metrics"]["n"] == 2 and t["nyud"]["metrics"]["n"] == 3
    assert (
        t["ego4d"]["metrics"]["n"] == 3 and t["ego4d"]["dataset"]["classes"] == 2
    )  # 10 s -> 2 windows, 5 s -> 1
    assert (
        rep["table2"]["columns"] == ["NYU-D", "ESC", "LLVIP", "Ego4D"] and rep["settings"]["templates"] == 1
    )
    assert rep["model"]["official"] is False and t["esc50"]["paper"] == {}
    out = capsys.readouterr().out
    assert "Table 2 layout" in out and "paper (ImageBind-H)" not in out


def test_bad_audio_named_or_skipped(world, tmp_path):
    root, _ = world
    esc = tmp_path / "esc"
    _esc(esc)
    (esc / "audio/2-1-A-1.wav").write_bytes(b"not audio at all")
    with pytest.raises(data.LoadError, match="2-1-A-1.wav"):
        E.run_eval(E.EvalConfig(["esc50"], esc, root / "model", cache_dir=tmp_path / "c", progress=False, verbose=False))
    rep = E.run_eval(E.EvalConfig(["esc50"], esc, root / "model", cache_dir=tmp_path / "c", progress=False, verbose=False,
                     on_error="skip"))  # fmt: skip
    r = rep["tasks"]["esc50"]
    assert r["metrics"]["n"] == 3 and r["dataset"]["missing"] == 1
    assert "2-1-A-1.wav" in r["dataset"]["missing_examples"][0][0]


def test_depth_and_thermal_items_reach_the_loaders_with_their_geometry(world):
    root, model = world
    ds = E.TASKS["nyud"].reader(root / "nyud")
    got = load_items("depth", ds.items[:2], model)
    ref = data.load_depth([it.path for it in ds.items[:2]], focal_length=518.857901, baseline=0.075, encoding="mm",
                          size=224)  # fmt: skip
    torch.testing.assert_close(got, ref)
    crop = Item(root / "LLVIP/infrared/test/190001.jpg", box=(10, 20, 30, 70))
    with Image.open(crop.path) as im:
        ref = data.load_thermal([im.crop(crop.box)], size=224)
    torch.testing.assert_close(load_items("thermal", [crop], model), ref)


def test_unknown_task_and_missing_official_checkpoint(world, tmp_path, monkeypatch):
    root, _ = world
    with pytest.raises(KeyError, match="unknown eval task 'esc'"):
        E.run_eval(E.EvalConfig(["esc"], root, root / "model"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("bindkit.evaluate.runner.OFFICIAL_LOCATIONS", (tmp_path / "none.pth",))
    with pytest.raises(FileNotFoundError, match="imagebind_huge.pth not found"):
        E.run_eval(E.EvalConfig(["folder"], root / "colors", "imagebind_huge", cache_dir=tmp_path / "c", verbose=False))


def _mp4(path: Path, shade: int, freq: float, seconds: int = 3, fps: int = 10):
    """A tiny mp4 with a video stream (flat frames of one shade) and an AAC tone."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        for i in range(seconds * fps):
            img = np.full((48, 64, 3), (shade + 3 * i) % 255, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        pcm = (0.3 * np.sin(2 * np.pi * freq * np.arange(seconds * 16000) / 16000)).astype(np.float32)[None]
        for s in range(0, pcm.shape[1], 1024):
            fr = av.AudioFrame.from_ndarray(pcm[:, s : s + 1024], format="fltp", layout="mono")
            fr.sample_rate = 16000
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode():
            c.mux(p)


def test_msrvtt_fusion_and_clotho_retrieval(world, tmp_path):
    root, model = world
    ms = tmp_path / "msrvtt"
    rows = ["key,vid_key,video_id,sentence"]
    for i, (shade, f, cap) in enumerate(
        [(10, 300.0, "a dark room"), (120, 900.0, "a grey wall"), (240, 2000.0, "snow")]
    ):
        _mp4(ms / f"MSRVTT/videos/all/video{7010 + i}.mp4", shade, f)
        rows.append(f"ret{i},msr{7010 + i},video{7010 + i},{cap}")
    (ms / "MSRVTT_JSFUSION_test.csv").write_text("\n".join(rows))
    rep = E.run_eval(E.EvalConfig(["msrvtt-av", "msrvtt", "msrvtt-audio"], ms, root / "model", cache_dir=tmp_path / "c",
                     progress=False, verbose=False))  # fmt: skip
    t = rep["tasks"]
    assert (
        t["msrvtt"]["cache"]["misses"] == 0 and t["msrvtt-audio"]["cache"]["misses"] == 0
    )  # fusion embedded both
    files = [ms / f"MSRVTT/videos/all/video{7010 + i}.mp4" for i in range(3)]
    v = model.encode({"vision": data.load("video", files, config=model.config)})["vision"]
    a = model.encode({"audio": data.load("audio", files, config=model.config)})["audio"]
    txt = model.encode({"text": data.tokenize(["a dark room", "a grey wall", "snow"])})["text"]
    ref = E.caption_retrieval(E.fuse(v, a, (0.95, 0.05)), txt, np.arange(3), ks=(1, 5, 10))
    assert t["msrvtt-av"]["metrics"]["text_to_item"] == pytest.approx(ref["text_to_item"])
    assert t["msrvtt-av"]["metrics"]["weights"] == [0.95, 0.05]
    ref_v = E.caption_retrieval(v, txt, np.arange(3), ks=(1, 5, 10))
    assert t["msrvtt"]["metrics"]["item_to_text"] == pytest.approx(ref_v["item_to_text"])

    clotho = tmp_path / "clotho"
    lines = ["file_name,caption_1,caption_2,caption_3,caption_4,caption_5"]
    for name, f in (("low hum.wav", 200.0), ("high, beep.wav", 3000.0)):
        _wav(clotho / "evaluation" / name, f)
        lines.append(f'"{name}",' + ",".join(f'"{name[:-4]} caption {j}"' for j in range(5)))
    (clotho / "clotho_captions_evaluation.csv").write_text("\n".join(lines))
    rc = E.run_eval(E.EvalConfig(
        ["clotho"], clotho, root / "model", cache_dir=tmp_path / "c", progress=False, verbose=False
    ))
    m = rc["tasks"]["clotho"]["metrics"]
    assert m["text_to_item"]["n_queries"] == 10 and m["item_to_text"]["n_queries"] == 2
    assert m["item_to_text"]["R@5"] == 100.0  # five captions each among ten: any hit in the top 5 counts


def test_task_roots(tmp_path):
    from bindkit.evaluate.runner import task_roots

    (tmp_path / "esc50").mkdir()
    r = task_roots(["esc50", "esc50-fewshot", "nyud"], tmp_path)
    assert r == {"esc50": [tmp_path / "esc50"], "esc50-fewshot": [tmp_path / "esc50"], "nyud": [tmp_path]}
    assert task_roots(["a", "b"], ["x", "y"]) == {"a": [Path("x")], "b": [Path("y")]}
    assert task_roots(["folder-pair"], ["q", "g"]) == {"folder-pair": [Path("q"), Path("g")]}
    with pytest.raises(ValueError, match="no root given for tasks"):
        task_roots(["a", "b"], {"a": "x"})


def test_a_module_without_encode_is_refused_by_name():
    from bindkit.evaluate.cache import EmbeddingCache
    from bindkit.evaluate.config import EvalConfig
    from bindkit.evaluate.runner import resolve_model

    cfg = EvalConfig(tasks=["folder"], root=["."], model=torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="Linear has no encode"):
        resolve_model(cfg, ["text"], EmbeddingCache())
