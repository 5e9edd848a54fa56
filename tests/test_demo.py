"""`bindkit demo`: stem constraints, run-directory helpers and scorers checked by hand; then one small end-to-end run
whose report is re-derived independently from the files it wrote (saved model reloaded, test split read back
through the loaders, zero-shot recomputed with numpy)."""

import dataclasses
import json
import math
import shutil
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import bindkit
from bindkit.data import load, tokenize
from bindkit.demo import run_demo
from bindkit.demo.run import DemoStopped, default_run_root, latest_run, new_run_dir, point_latest, targets
from bindkit.demo.scores import arithmetic_query, retrieval_matrix, trained_together, zero_shot_table
from bindkit.demo.settings import BOUND, PRESETS, Phase
from bindkit.demo.training import mean_free_, plane_blind_


# ------------------------------------------------------------------------------------------ stem constraints
def test_plane_blind_filters_ignore_any_tilted_plane_but_not_relief():
    torch.manual_seed(0)
    w = plane_blind_(torch.randn(16, 1, 8, 8))
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    plane = (3.0 + 0.7 * xx - 1.3 * yy)[None, None]  # disparity of a tilted plate: affine in pixels
    assert F.conv2d(plane, w, stride=4).abs().max() < 1e-4 * plane.abs().max()
    relief = plane.clone()
    relief[..., 10:14, 8:24] += 2.0  # a ridge on the plate
    assert F.conv2d(relief, w, stride=4).abs().max() > 0.5
    assert torch.allclose(plane_blind_(w.clone()), w, atol=1e-6)  # a projection: idempotent


def test_mean_free_filters_ignore_each_channels_background():
    torch.manual_seed(0)
    w = mean_free_(torch.randn(8, 3, 2, 8, 8))  # the vision stem's 3-D kernel
    flat = torch.ones(1, 3, 2, 16, 16) * torch.tensor([0.2, -1.0, 0.7]).view(1, 3, 1, 1, 1)  # a coloured surface
    assert F.conv3d(flat, w, stride=(2, 8, 8)).abs().max() < 1e-5
    stroke = flat.clone()
    stroke[..., 4:12, 7:9] = 1.5
    assert F.conv3d(stroke, w, stride=(2, 8, 8)).abs().max() > 0.1


# ------------------------------------------------------------------------------------------ run directory
def test_default_run_root_is_the_cache_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert default_run_root() == tmp_path / "xdg" / "bindkit" / "runs" / "demo"


def test_latest_pointer_symlink_and_text_fallback(monkeypatch, tmp_path):
    a, b = new_run_dir(tmp_path), new_run_dir(tmp_path)
    assert a != b and a.is_dir() and b.is_dir()  # same second: suffixed, never reused
    link = point_latest(tmp_path, a)
    assert link.is_symlink() and latest_run(tmp_path) == a.resolve()
    point_latest(tmp_path, b)  # replaced, not nested
    assert latest_run(tmp_path) == b.resolve()

    def no_symlinks(self, *args, **kwargs):
        raise OSError("symlinks not permitted")

    monkeypatch.setattr(type(tmp_path), "symlink_to", no_symlinks)
    link = point_latest(tmp_path, a)
    assert link.is_file() and not link.is_symlink() and latest_run(tmp_path) == a
    with pytest.raises(FileNotFoundError, match="run `bindkit demo` first"):
        latest_run(tmp_path / "none")


def test_bad_seed_fails_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="seed"):
        run_demo(tmp_path, seed=-1)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------ scorers
def test_arithmetic_query_against_a_hand_built_gallery():
    # Items: digit d (10) x surface s (3), two of each; embeddings = [onehot(d), onehot(s)] so the truth is known.
    digit = np.repeat(np.arange(10), 6)
    surface = np.array(["paper", "wood", "board"] * 20)
    s_idx = np.unique(surface, return_inverse=True)[1]
    image = torch.cat([F.one_hot(torch.tensor(digit), 10), 2 * F.one_hot(torch.tensor(s_idx), 3)], 1).float()
    audio = torch.cat([F.one_hot(torch.tensor(digit), 10), torch.zeros(60, 3)], 1).float()
    out = arithmetic_query(image, audio, list(surface), digit, n_queries=30, k=2)
    assert out["ceiling"] == 100.0  # two items per (digit, surface)
    assert out["image+audio"] == 100.0  # unit(image) + unit(audio) lands between them: both attributes
    # the image alone finds its own (digit, surface) and then same-surface items of any digit: rarely the spoken one
    assert out["image"] <= 20.0
    assert out["audio"] < 60.0  # the audio alone gets the digit but the surface only by chance


def test_retrieval_matrix_matches_brute_force_and_marks_training_pairs():
    g = torch.Generator().manual_seed(0)
    y = np.arange(40) % 10
    centres = torch.randn(10, 16, generator=g)
    emb = {m: F.normalize(centres[y] + s * torch.randn(40, 16, generator=g), dim=-1)
           for m, s in (("image", 0.3), ("audio", 1.5), ("depth", 0.8))}  # fmt: skip
    out = retrieval_matrix(emb, y)
    for key, r in out.items():
        q, k = key.split("->")
        top = (emb[q] @ emb[k].T).topk(5, dim=1).indices.numpy()
        assert math.isclose(r["R@1"], 100 * np.mean(y[top[:, 0]] == y))
        assert math.isclose(r["R@5"], 100 * np.mean((y[top] == y[:, None]).any(1)))
    assert out["image->audio"]["trained_together"] and out["depth->image"]["trained_together"]
    assert not out["audio->depth"]["trained_together"]
    assert trained_together("image", "text") and not trained_together("text", "imu")


def test_zero_shot_table_compares_only_when_a_text_paired_model_is_given():
    g = torch.Generator().manual_seed(1)
    y = np.arange(30) % 10
    cls = F.normalize(torch.randn(10, 8, generator=g), dim=-1)
    spread = {"image": 0.1, "video": 0.2, "audio": 0.9, "depth": 0.4, "thermal": 0.5, "imu": 0.6}
    emb = {m: F.normalize(cls[y] + s * torch.randn(30, 8, generator=g), dim=-1) for m, s in spread.items()}
    alone = zero_shot_table(emb, cls, y)
    for m, e in emb.items():  # top-1 by hand: the class whose embedding is nearest
        assert math.isclose(alone[m]["emergent"]["top1"], 100 * np.mean((e @ cls.T).argmax(1).numpy() == y))
        assert "text_paired" not in alone[m] and "gap" not in alone[m]
    cls_p = F.normalize(torch.randn(10, 8, generator=g), dim=-1)
    tp = {"audio": F.normalize(cls_p[y] + 0.2 * torch.randn(30, 8, generator=g), dim=-1)}
    both = zero_shot_table(emb, cls, y, (tp, cls_p))
    hand = 100 * np.mean((tp["audio"] @ cls_p.T).argmax(1).numpy() == y)  # scored against its own classes
    assert math.isclose(both["audio"]["text_paired"]["top1"], hand)
    assert math.isclose(both["audio"]["gap"], hand - both["audio"]["emergent"]["top1"])
    assert "text_paired" not in both["depth"] and both["depth"] == alone["depth"]


def test_targets_name_every_miss():
    zs = {m: {"emergent": {"top1": 95.0}, "gap": 1.0} for m in BOUND}
    zs["audio"] = {"emergent": {"top1": 70.0}, "gap": 12.0}
    ret = {"audio->depth": {"R@1": 60.0, "trained_together": False},
           "image->depth": {"R@1": 10.0, "trained_together": True},
           "text->imu": {"R@1": 5.0, "trained_together": False}}  # fmt: skip
    t = targets({"zero_shot": zs, "retrieval": ret})
    assert [v["met"] for v in t.values()] == [False, False, False]
    assert "audio" in t["emergent top-1 >= 90% (bound modalities)"]["detail"]
    assert "audio->depth" in t["R@1 >= 80% (never trained together)"]["detail"]
    assert "image->depth" not in t["R@1 >= 80% (never trained together)"]["detail"]
    assert "12.0" in t["within 5 points of text-paired"]["detail"]
    # a preset without the text-paired run (quick) has no comparison, so no such target line
    no_tp = {m: {"emergent": row["emergent"]} for m, row in zs.items()}
    assert "within 5 points of text-paired" not in targets({"zero_shot": no_tp, "retrieval": ret})


def test_text_paired_run_binds_to_the_frozen_text_encoder(tmp_path, one_torch_thread):
    """The full preset's comparison run: (text, X) pairs for every bound modality against the anchor's frozen
    text encoder; the anchor's towers leave the run unchanged."""
    from bindkit.demo.anchor import load_anchor, pretrained_anchor_stage
    from bindkit.demo.data import build_data
    from bindkit.demo.settings import demo_config
    from bindkit.demo.training import train_bound

    assert PRESETS["full"].text_paired is not None and PRESETS["quick"].text_paired is None
    data = build_data(demo_config(), 32, 32, 4, 2, seed=0)
    anchor = pretrained_anchor_stage(tmp_path / "anchor")
    phase = Phase(steps=6, batch_size=8, lr=1e-3, warmup_steps=1, share={m: 1.0 for m in BOUND})
    res = train_bound(data.train_inputs, anchor, phase, tmp_path / "tp", progress=False, via="text")
    rows = [json.loads(line) for line in (tmp_path / "tp" / "metrics.jsonl").read_text().splitlines()]
    assert {r["pair"] for r in rows} <= {f"text-{m}" for m in BOUND} and len(rows) == 6
    assert res.model is not None
    got, want = res.model.state_dict(), load_anchor().state_dict()
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0, msg=k)


# ------------------------------------------------------------------------------------------ a stopped run
def test_a_stopped_stage_stops_the_demo_with_its_name(tmp_path):
    """With its stop event set (what `bindkit demo` does on SIGTERM), the anchor stage trains one step, checkpoints
    and the demo raises DemoStopped naming the stage; no later stage runs and no `latest` pointer is written."""
    tiny = dataclasses.replace(PRESETS["tiny"], n_anchor=48, n_train=24, n_test=20, n_probe_pool=10,
                               anchor=Phase(steps=5, batch_size=8, lr=1e-3, warmup_steps=1))  # fmt: skip
    stop = threading.Event()
    stop.set()
    with pytest.raises(DemoStopped, match=r"stage 'anchor' at step 1/5"):
        run_demo(run_root=tmp_path, settings=tiny, progress=False, stop=stop)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run / "train" / "anchor" / "checkpoints" / "step_00000001").is_dir()
    assert not (run / "train" / "bind").exists() and not (tmp_path / "latest").exists()


# ------------------------------------------------------------------------------------------ a --quick run
def test_quick_run_writes_its_run_directory(quick_demo):
    run = quick_demo.run_dir
    assert (run.parent / "latest").resolve() == run.resolve()
    for name in ("report.md", "report.json", "test/manifest.jsonl", "probe/manifest.jsonl", "model/config.json",
                 "eval/audio.csv", "eval/templates.txt", "eval/classnames.txt"):
        assert (run / name).is_file(), name  # fmt: skip
    assert sorted(p.name for p in (run / "plots").glob("*.png")) == ["retrieval.png", "training.png", "zero_shot.png"]
    assert not (run / "train" / "cache").exists()  # only what a later command needs is kept
    # Its wall time is measured by benchmarks/bench_demo.py, not asserted here.
    assert set(quick_demo.report["timings_s"]) >= {"world", "anchor", "bind", "evaluate", "total"}
    # the quick preset gives the text-paired comparison's time to binding: no run, no column, no target line
    assert not (run / "text_paired").exists() and "text-paired" not in quick_demo.report["timings_s"]
    assert not any("text_paired" in row for row in quick_demo.report["zero_shot"].values())
    assert not any("text-paired" in k for k in quick_demo.report["targets"])
    assert "Text-paired column: not run in this preset" in quick_demo.report_md.read_text()


def test_quick_run_is_clearly_above_chance(quick_demo):
    r, md = quick_demo.report, quick_demo.report_md.read_text()
    n = r["settings"]["n_test"]
    for m, row in r["zero_shot"].items():
        # chance is 10%; with n = 300 test items, 20% lies about 6 standard deviations above it
        assert row["emergent"]["top1"] >= 20.0, (m, row)
        assert f"| {m} |" in md
    assert n == 300 and "audio->depth" in md and "image+audio" in r["arithmetic"]
    assert set(r["few_shot"]["audio"]) >= {"k=1", "k=2", "k=4", "k=8"}


def test_report_zero_shot_rederived_with_numpy(quick_demo):
    run, r = quick_demo.run_dir, quick_demo.report
    model = bindkit.load_model(quick_demo.model_dir)
    assert "mean" in model.config.encoders["depth"].preprocess  # fitted constants travel with the weights
    rows = [json.loads(line) for line in (run / "test" / "manifest.jsonl").read_text().splitlines()]
    digits = np.array([row["digit"] for row in rows])
    templates = (run / "eval" / "templates.txt").read_text().split("\n")[:-1]
    words = (run / "eval" / "classnames.txt").read_text().split()
    ctx = model.config.encoders["text"].input_shape[0]
    prompts = tokenize([t.format(w) for w in words for t in templates], context_length=ctx)
    with torch.no_grad():
        t = model({"text": prompts})["text"].numpy().reshape(10, len(templates), -1)
    t /= np.linalg.norm(t, axis=-1, keepdims=True)
    cls = t.mean(1)
    cls /= np.linalg.norm(cls, axis=-1, keepdims=True)
    for m in ("audio", "depth"):
        x = load(m, [run / "test" / row["files"][m] for row in rows], config=model.config)
        with torch.no_grad():
            e = model({m: x})[m].numpy()
        acc = 100 * np.mean((e @ cls.T).argmax(1) == digits)
        assert acc == pytest.approx(r["zero_shot"][m]["emergent"]["top1"], abs=100 / len(rows)), m


def test_apps_only_redoes_the_stage_from_a_clean_slate(quick_demo, tmp_path, monkeypatch):
    """`bindkit demo --on-run RUN` on a run that already had the applications stage trains its detector and decoder
    afresh (a second decoder run in the same folder used to stop with FileExistsError, and the detector resumed the
    old run); the rest of the run stays. Stage sizes cut down: this checks the folders, not the figures."""
    import functools

    import bindkit.demo.run as demo_run
    from bindkit.demo import apps_detect, apps_generate

    monkeypatch.setitem(apps_generate.PRESETS, "quick", apps_generate._settings(steps=3, n_images=64, per_digit=1,
                                                                                 sample_steps=2))  # fmt: skip
    monkeypatch.setattr(apps_detect, "DetectSettings", functools.partial(apps_detect.DetectSettings,
                                                                         n_train_scenes=8, steps=3))  # fmt: skip
    monkeypatch.setitem(demo_run.PRESETS, "quick", dataclasses.replace(PRESETS["quick"], scenes=6))
    run = tmp_path / "run"
    shutil.copytree(quick_demo.run_dir, run, ignore=shutil.ignore_patterns("train"))
    stale = [run / "apps" / "detector" / "checkpoints" / "step_00000001" / "old",
             run / "train" / "decoder" / "checkpoints" / "step_00000001" / "old",
             run / "model" / "decoder" / "old.safetensors"]  # fmt: skip
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("old")
    result = demo_run.apps_only(run)
    assert [p for p in stale if p.exists()] == []
    assert (run / "apps" / "detector" / "detector").is_dir() and (run / "model" / "decoder").is_dir()
    assert set(result.report["applications"]) == {"locate", "detect", "generate"}
    assert (run / "model" / "config.json").is_file() and (run / "test" / "manifest.jsonl").is_file()
