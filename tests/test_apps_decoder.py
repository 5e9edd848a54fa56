"""The unCLIP decoder: its training run (resume, checks), `generate` through a decoder folder, and the demo stage's
decoder drawing digits from held-out embeddings that the anchor recognises above chance (on the quick demo run)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch

import bindkit
from bindkit.apps import generate
from bindkit.apps.decoder import Decoder, DecoderConfig
from bindkit.apps.generate import model_fingerprint
from bindkit.train.decoder import DecoderRun, DecoderTrainConfig, strokes, train_decoder

pytest.importorskip("diffusers")

TINY = DecoderConfig(embed_dim=16, image_size=8, channels=(8, 16), steps=3)
TRAIN = DecoderTrainConfig(steps=4, batch_size=8, warmup_steps=1, checkpoint_every=2, log_every=1)


def _data(n: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g) * 2 - 1, torch.randn(n, 16, generator=g)


def test_strokes_keep_the_pen_and_drop_the_surface():
    """`strokes` (the stroke-weighted loss term) is zero on a flat or linearly lit surface away from the border, and
    keeps a one-pixel line at 24/25 of its height (its 5x5 neighbourhood mean, by hand, is 1/25 per unit)."""
    ramp = torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16)
    assert strokes(ramp)[..., 2:-2, 2:-2].abs().max() < 1e-5
    line = torch.zeros(1, 3, 16, 16)
    line[..., :, 8] = 1.0
    out = strokes(line)[0, 0, 8]
    assert torch.allclose(out[8], torch.tensor(1 - 5 / 25)) and torch.allclose(out[7], torch.tensor(-5 / 25))


def test_embedding_map_reaches_every_pixel(one_torch_thread):
    """The embedding's spatial map is part of the UNet's input (concat conditioning): zeroing `cond_map` changes the
    prediction, and a decoder config saved before the map existed loads without one."""
    dec = Decoder(TINY).eval()
    x, e = torch.randn(2, 3, 8, 8), torch.randn(2, 16)
    t = torch.tensor([500, 500])
    with torch.no_grad():
        before = dec(x, t, e)
        dec.cond_map.weight.zero_()
        assert not torch.allclose(before, dec(x, t, e))
    old = {k: v for k, v in dataclasses.asdict(TINY).items() if k != "cond_channels"}
    assert DecoderConfig.from_dict(old).cond_channels == 0 and Decoder(DecoderConfig.from_dict(old)).cond_map is None


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, one_torch_thread):
    x, e = _data()
    whole = train_decoder(x, e, TINY, TRAIN, tmp_path / "whole", progress=False)
    DecoderRun(x, e, TINY, TRAIN, tmp_path / "cut").run(progress=False, stop_after=2)
    assert not (tmp_path / "cut" / "final").exists()
    resumed = DecoderRun(x, e, TINY, TRAIN, tmp_path / "cut", resume=True)
    assert resumed.step == 2
    resumed = resumed.run(progress=False)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert (tmp_path / "cut" / "plots" / "loss.png").is_file()
    back = Decoder.load(tmp_path / "cut" / "final" / "decoder")
    torch.testing.assert_close(back.sample(e[:2], seed=1), resumed.sample(e[:2], seed=1))


def test_training_refuses_bad_input_and_a_second_run(tmp_path, one_torch_thread):
    x, e = _data()
    with pytest.raises(ValueError, match=r"embeddings must be \(24, 16\)"):
        train_decoder(x, e[:, :8], TINY, TRAIN, tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match=r"images must be \(N, 3, 8, 8\)"):
        train_decoder(x[:, :1], e, TINY, TRAIN, tmp_path / "a", progress=False)
    assert not (tmp_path / "a").exists()
    train_decoder(x, e, TINY, TRAIN, tmp_path / "b", progress=False)
    with pytest.raises(FileExistsError, match="already holds a decoder run"):
        train_decoder(x, e, TINY, TRAIN, tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="different decoder or training config"):
        DecoderRun(x, e, TINY, dataclasses.replace(TRAIN, lr=1e-4), tmp_path / "b", resume=True)


def test_generate_dispatches_to_a_decoder_folder(tmp_path, one_torch_thread):
    cfg = bindkit.get_config("imagebind_tiny")
    torch.manual_seed(0)
    model = bindkit.ImageBind(cfg).eval()
    dcfg = dataclasses.replace(TINY, embed_dim=cfg.out_dim, model_key=model_fingerprint(model))
    folder = Decoder(dcfg).save(tmp_path / "decoder")
    a = generate(model, "a dog", folder, out=tmp_path / "out", seed=2, num_images=2)
    b = generate(model, "a dog", folder, seed=2, num_images=2)
    assert [im.size for im in a] == [(8, 8)] * 2
    assert np.array_equal(np.asarray(a[1]), np.asarray(b[1]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))  # two draws, two noises
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2-0.png", "2-1.png"]
    other = bindkit.ImageBind(cfg).eval()  # another random init: another fingerprint
    with pytest.raises(ValueError, match="the generator was trained on embeddings of model"):
        generate(other, "a dog", folder, out=tmp_path / "o2")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        generate(model, "a dog", folder, steps=-1, out=tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_demo_stage_on_a_copy_of_the_quick_run(quick_demo, tmp_path, one_torch_thread):
    """The applications stage on a copy of the quick run (`update_run`, as `bindkit demo --on-run` does): the decoder
    is trained and saved beside the model, every source is drawn and scored (above chance, pooled over the sources),
    the report gains its section and grid,
    and `generate` draws from the saved decoder folder with a held-out recording."""
    from bindkit.demo import apps_generate

    run = tmp_path / "run"
    for name in ("model", "test", "probe", "report.json", "report.md"):
        src = quick_demo.run_dir / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, run / name)
    old = run / "train" / "decoder" / "checkpoints" / "step_00000001"
    old.mkdir(parents=True)  # a previous run of the stage: trained again from scratch, not refused or resumed
    g = apps_generate.update_run(run, preset="tiny", progress=False)
    assert not old.exists()
    n = g["n_per_source"]
    assert n == 10 * apps_generate.PRESETS["tiny"].per_digit
    for m in (*apps_generate.SOURCES, "real_images"):  # shares of n draws, in %
        assert round(g[m] * n / 100, 6) == round(g[m] * n / 100) and 0 <= g[m] <= 100
    assert g["chance"] == 10.0
    # Above chance, pooled over the six sources (n draws each, 10% chance): at least 20% of 6n = 180 draws is 4.5
    # binomial sd above chance's mean of 18 (a decoder that ignores its condition passes with p < 1e-5). Measured on
    # one thread: 89 of 180 with stroke weight 32 (image 57%, audio 40%, thermal 53%), 77 with weight 4; with 400
    # training steps (weight 4) it was 25, at chance.
    hits = sum(round(g[m] * n / 100) for m in apps_generate.SOURCES)
    assert hits >= 0.20 * 6 * n, {m: g[m] for m in (*apps_generate.SOURCES, "real_images")}
    assert (run / g["grid"]).is_file() and (run / "train" / "decoder" / "plots" / "loss.png").is_file()
    assert set(g["prior"]) == set(apps_generate.SOURCES) and g["prior"]["image"] == g["image"]  # image: no shift
    assert (run / "model" / "decoder" / "prior.safetensors").is_file()
    assert "images from any modality" in (run / "report.md").read_text()
    assert json.loads((run / "report.json").read_text())["applications"]["generate"]["audio"] == g["audio"]
    row = json.loads((run / "test" / "manifest.jsonl").read_text().splitlines()[0])
    imgs = generate(run / "model", run / "test" / row["files"]["audio"], run / "model" / "decoder", steps=4)
    assert imgs[0].size == (32, 32)
    shifted = generate(run / "model", run / "test" / row["files"]["audio"], run / "model" / "decoder", steps=4,
                       prior=True)  # fmt: skip
    assert not np.array_equal(np.asarray(imgs[0]), np.asarray(shifted[0]))  # the fitted prior moved the audio query
