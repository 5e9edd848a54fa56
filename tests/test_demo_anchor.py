"""The demo's image-text anchor: scene crops and their captions, the shipped pretrained anchor (fingerprint, held-out
zero-shot), and the demo's pretrained anchor stage."""

import dataclasses
import json
import shutil
import threading

import numpy as np
import pytest
import torch

from bindkit.checkpoint import load_model
from bindkit.data import tokenize
from bindkit.demo.anchor import (
    ANCHOR_ENCODERS,
    RECIPE,
    WEIGHTS,
    AnchorRecipe,
    crop_label,
    load_anchor,
    save_anchor,
    scene_crops,
    shipped_anchor_dir,
    zero_unseen_tokens_,
)
from bindkit.demo.run import DemoStopped, run_demo
from bindkit.demo.settings import PRESETS, Phase, demo_config
from bindkit.model import ImageBind
from bindkit.worlds import DigitsWorld
from bindkit.worlds.captions import SURFACE_PHRASES, WORDS
from bindkit.worlds.inputs import image_tensor
from bindkit.worlds.scenes import sample_scenes


def test_crop_label_against_hand_made_boxes():
    boxes = np.array([[4, 4, 14, 20], [36, 6, 50, 26], [40, 40, 60, 62]], np.float32)  # (k, 4) model px
    assert crop_label(boxes, 0, 0, 32) == 0  # only the first lies wholly inside [0, 32)^2
    assert crop_label(boxes, 24, 0, 32) == 1
    assert crop_label(boxes, 16, 16, 32) == -1  # parts of all three, none whole
    assert crop_label(boxes, 32, 32, 32) == 2
    assert crop_label(boxes, 5, 0, 32) == 0  # cut by one pixel: within the 1-px tolerance
    assert crop_label(boxes, 6, 0, 32) == -1  # cut by two: not whole
    assert crop_label(boxes, 0, 0, 32, centre=4.0) == -1  # whole, but 7 px left of the crop's centre
    assert crop_label(boxes, -7, -4, 32, centre=4.0) == 0  # whole and centred
    wide = np.array([[2, 2, 12, 12], [16, 16, 30, 30]], np.float32)
    assert crop_label(wide, 0, 0, 32) == -2  # two whole digits: left out


def test_scene_crops_show_what_their_captions_say():
    scenes = sample_scenes(DigitsWorld(seed=0), "train", 6, seed=3, counts=(2, 3))
    x, texts, digits = scene_crops(scenes, 32, 8, seed=0)
    assert x.shape == (len(texts), 3, 32, 32) and len(digits) == len(texts)
    assert (digits >= 0).sum() >= 6 and (digits == -1).sum() >= 6  # aimed crops and blank ones
    full = image_tensor(scenes.images, size=64)
    for t, d in zip(texts, digits, strict=True):
        if d >= 0:
            assert WORDS[d] in t or str(d) in t
        else:
            assert any(p in t for p in SURFACE_PHRASES.values()) and not any(w in t.split() for w in WORDS)
    # each crop is a window of its scene's model-size canvas
    i = 0
    hit = [(full[0, :, oy : oy + 32, ox : ox + 32] - x[i]).abs().max() < 1e-6 for oy in range(33) for ox in range(33)]
    assert any(hit)


def _tiny_anchor(tmp_path, text: torch.Tensor):
    torch.manual_seed(0)
    model = ImageBind(demo_config().select(ANCHOR_ENCODERS)).eval()
    zero_unseen_tokens_(model, text)
    return model, save_anchor(model, tmp_path / "anchor", AnchorRecipe(steps=1), {"note": "test"})


def test_saved_anchor_loads_to_the_same_encoders(tmp_path):
    text = tokenize(["the number seven", "a blank patch of white paper", "nine", "a handwritten 3"], 24)
    model, folder = _tiny_anchor(tmp_path, text)
    assert (folder / WEIGHTS).stat().st_size < 2_000_000  # token rows stored sparsely
    back = load_anchor(folder)
    img = torch.randn(2, 3, 32, 32)
    a, b = model.encode({"vision": img, "text": text[:2]}), back.encode({"vision": img, "text": text[:2]})
    for m in ("vision", "text"):
        torch.testing.assert_close(a[m], b[m], rtol=0, atol=0)


def test_a_tampered_anchor_is_refused(tmp_path):
    _, folder = _tiny_anchor(tmp_path, tokenize(["seven"], 24))
    meta = json.loads((folder / RECIPE).read_text())
    (folder / RECIPE).write_text(json.dumps(meta | {"sha256": "0" * 64}))
    with pytest.raises(ValueError, match="does not match recipe.json"):
        load_anchor(folder)


def test_shipped_anchor_matches_its_fingerprint_and_scores_held_out_writers(one_torch_thread):
    """The packaged anchor loads (sha256 checked by load_anchor) and classifies 200 held-out writers' digits
    zero-shot far above chance (10%), close to the figure its recipe.json records on 600."""
    from bindkit.demo.anchor import score_anchor

    folder = shipped_anchor_dir()
    meta = json.loads((folder / RECIPE).read_text())
    model = load_anchor()
    got = score_anchor(model, n_frames=200, n_scenes=0)["zero_shot_top1"]
    assert got >= 70.0 and abs(got - meta["figures"]["zero_shot_top1"]) <= 8.0
    assert meta["command"].startswith("python scripts/train_demo_anchor.py")


def test_demo_binds_to_the_pretrained_anchor_without_training_it(tmp_path):
    """With the shipped anchor (the quick and full presets' default) the anchor stage only copies it into the run;
    a stop event then stops the first training stage, binding."""
    tiny = dataclasses.replace(PRESETS["tiny"], n_anchor=48, n_train=24, n_test=20, n_probe_pool=10,
                               bind=Phase(steps=5, batch_size=8, lr=1e-3, warmup_steps=1), train_anchor=False)  # fmt: skip
    assert not PRESETS["quick"].train_anchor and not PRESETS["full"].train_anchor
    stop = threading.Event()
    stop.set()
    with pytest.raises(DemoStopped, match=r"stage 'bind' at step 1/5"):
        run_demo(run_root=tmp_path, settings=tiny, progress=False, stop=stop)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    anchor = run / "train" / "anchor"
    assert (anchor / RECIPE).read_text() == (shipped_anchor_dir() / RECIPE).read_text()
    cfg = json.loads((anchor / "final" / "model" / "config.json").read_text())
    assert set(cfg["encoders"]) == set(ANCHOR_ENCODERS) and not (anchor / "metrics.jsonl").exists()
    shutil.rmtree(run)


def test_demo_binds_to_another_anchor_folder_when_given_one(tmp_path):
    """`run_demo(anchor=DIR)` (`bindkit demo --anchor DIR`) copies that anchor into the run and binds to it; a folder
    without recipe.json, or the flag beside train_anchor=True, is refused before any work."""
    _, folder = _tiny_anchor(tmp_path, tokenize(["seven"], 24))
    tiny = dataclasses.replace(PRESETS["tiny"], n_anchor=48, n_train=24, n_test=20, n_probe_pool=10,
                               bind=Phase(steps=5, batch_size=8, lr=1e-3, warmup_steps=1), train_anchor=False)  # fmt: skip
    stop = threading.Event()
    stop.set()
    with pytest.raises(DemoStopped, match=r"stage 'bind'"):
        run_demo(run_root=tmp_path / "runs", settings=tiny, progress=False, stop=stop, anchor=folder)
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert (run / "train" / "anchor" / RECIPE).read_text() == (folder / RECIPE).read_text()
    back = load_anchor(folder)
    copied = load_model(run / "train" / "anchor" / "final" / "model").eval()
    img = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(copied.encode({"vision": img})["vision"], back.encode({"vision": img})["vision"])
    with pytest.raises(FileNotFoundError, match="no recipe.json"):
        run_demo(run_root=tmp_path / "none", settings=tiny, progress=False, anchor=tmp_path)
    with pytest.raises(ValueError, match="exclude each other"):
        run_demo(run_root=tmp_path / "none", settings=tiny, progress=False, anchor=folder, train_anchor=True)
    assert not (tmp_path / "none").exists()
    # the report names the anchor the run bound to
    from bindkit.demo.report import _anchor_md

    assert str(folder) in _anchor_md({"train_anchor": False, "anchor_dir": str(folder)})
    assert "bindkit/assets/demo_anchor" in _anchor_md({"train_anchor": False, "anchor_dir": None})
