"""Training-engine behaviours checked against independent references: AdamW settings and decay groups, the warm-up +
cosine schedule, stochastic depth, audio frequency masking, audio/frame alignment of video sources, `torchrun`,
resumption (LoRA, file manifests, a SIGKILL), LoRA block selection, bf16 autocast and activation
checkpointing.
"""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import bindkit
from _train_utils import clip_world, config, grads, image_depth_files, small_config, small_model, world
from bindkit import ImageBind, get_config, save_model
from bindkit.layers import Attention
from bindkit.train import (
    FilePairs,
    LoRAConfig,
    PairConfig,
    TensorPairs,
    TrainConfig,
    Trainer,
    audioset_pairs,
    load_config,
    train,
)
from bindkit.train import engine as engine_mod
from bindkit.train.augment import freq_mask
from bindkit.train.lora import LoRADelta, adapters
from bindkit.train.optim import lr_factor
from bindkit.train.sources import shape_options

TESTS = Path(__file__).resolve().parent


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(modalities, depth: int = 2, seed: int = 0) -> ImageBind:
    """`small_model` with `depth` blocks per trunk."""
    cfg = small_config(modalities)
    cfg = dataclasses.replace(
        cfg, encoders={m: dataclasses.replace(e, depth=depth) for m, e in cfg.encoders.items()}
    )
    torch.manual_seed(seed)
    return ImageBind(cfg)


def _imu_world(n: int = 32, seed: int = 0) -> TensorPairs:
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 3, 32, 32, generator=g)
    return TensorPairs(("vision", "imu"), img, torch.randn(n, 6, 400, generator=g))


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _untimed(recs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in recs]


# ------------------------------------------------------------------------------------------------ 1. AdamW
def _reference_groups(enc: nn.Module) -> tuple[set[str], set[str]]:
    """Decay / no-decay parameter names by module type (not by name or shape): the weight matrices of Linear,
    Conv and Embedding modules and the attention input projections decay; everything else (biases, norms,
    positional embeddings, cls tokens, bias_k/v tokens, logit scales) does not."""
    decay, plain = set(), set()
    for mod_name, mod in enc.named_modules():
        for name, p in mod.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            full = f"{mod_name}.{name}" if mod_name else name
            matrix = (isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)) and name == "weight") \
                or (isinstance(mod, Attention) and name == "in_proj_weight")  # fmt: skip
            (decay if matrix else plain).add(full)
    return decay, plain


def _adamw_reference(p0, g1, g2, lr, wd, betas, eps):
    """Two decoupled-weight-decay Adam steps (Loshchilov & Hutter; torch's AdamW) in float64."""
    p, m, v = p0.astype(np.float64), 0.0, 0.0
    b1, b2 = betas
    for t, g in ((1, g1), (2, g2)):
        g = g.astype(np.float64)
        p = p * (1 - lr * wd)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_adamw_gets_paper_betas_eps_and_decays_only_weight_matrices(tmp_path):
    assert TrainConfig().betas == (0.9, 0.95) and TrainConfig().eps == 1e-6  # the paper's AdamW settings
    pairs = [PairConfig(("vision", "text"), clip_world(), batch_size=8),
             PairConfig(("vision", "imu"), _imu_world(16), batch_size=8, grad_clip=0.0)]  # fmt: skip
    cfg = TrainConfig(pairs=pairs, encoders={"vision": "train", "text": "train", "imu": "train"}, steps=4,
                      warmup_steps=1, cache=False, progress=False, run_dir=str(tmp_path / "r"))  # fmt: skip
    tr = Trainer(cfg, model=small_model(("vision", "text", "imu")))
    opt = tr.optimizer
    assert type(opt) is torch.optim.AdamW
    groups = {g["name"]: g for g in opt.param_groups}
    assert sorted(groups) == sorted(
        f"{m}/{k}" for m in ("vision", "text", "imu") for k in ("decay", "no_decay")
    )
    # vision and text from the CLIP defaults (the first pair training them), imu from Table 9.
    want_lr_wd = {"vision": (5e-4, 0.2), "text": (5e-4, 0.2), "imu": (5e-4, 0.5)}
    names = {id(p): n for n, p in tr.model.named_parameters()}
    seen = []
    for m, (lr, wd) in want_lr_wd.items():
        decay, plain = _reference_groups(tr.model.encoders[m])
        got_decay = {names[id(p)].removeprefix(f"encoders.{m}.") for p in groups[f"{m}/decay"]["params"]}
        got_plain = {names[id(p)].removeprefix(f"encoders.{m}.") for p in groups[f"{m}/no_decay"]["params"]}
        assert got_decay == decay and got_plain == plain, m
        if m == "text":
            assert {"post.log_scale", "stem.pos_embed", "stem.token_embedding.weight"} <= plain | decay
            assert "stem.token_embedding.weight" in decay and {"post.log_scale", "stem.pos_embed"} <= plain
        assert groups[f"{m}/decay"]["weight_decay"] == wd and groups[f"{m}/no_decay"]["weight_decay"] == 0.0
        assert groups[f"{m}/decay"]["peak_lr"] == lr == groups[f"{m}/no_decay"]["peak_lr"]
        seen += [*groups[f"{m}/decay"]["params"], *groups[f"{m}/no_decay"]["params"]]
    # Every trainable parameter exactly once; the examples the paper excludes are excluded.
    assert sorted(map(id, seen)) == sorted(id(p) for p in tr.model.parameters() if p.requires_grad)
    plain_imu = _reference_groups(tr.model.encoders["imu"])[1]
    assert {"stem.prefix.cls_token", "stem.prefix.pos_embed", "trunk.blocks.0.attn.bias_k",
            "trunk.blocks.0.attn.bias_v", "trunk.blocks.0.norm1.weight", "head.norm.bias"} <= plain_imu  # fmt: skip
    for g in opt.param_groups:
        assert g["betas"] == (0.9, 0.95) and g["eps"] == 1e-6 and not g["amsgrad"], g["name"]

    # Numerically: two steps on the imu pair (no clipping, lr factor 1 at steps 0 and 1) against a float64 AdamW.
    gen = torch.Generator().manual_seed(0)
    imu = dict(tr.model.encoders["imu"].named_parameters())
    w, b = imu["trunk.blocks.0.mlp.fc1.weight"], imu["trunk.blocks.0.mlp.fc1.bias"]
    start = {"w": w.detach().clone().numpy(), "b": b.detach().clone().numpy()}
    gs = []
    for step in (0, 1):
        g = {"w": 1e-6 * torch.randn(w.shape, generator=gen), "b": 1e-6 * torch.randn(b.shape, generator=gen)}
        gs.append(g)
        w.grad, b.grad = g["w"].clone(), g["b"].clone()
        tr.state["step"] = step
        tr.optimizer_step(1)
    assert lr_factor(0, tr.total, tr.warmup) == lr_factor(1, tr.total, tr.warmup) == 1.0
    for key, p, wd in (("w", w, 0.5), ("b", b, 0.0)):
        got = p.detach().numpy().astype(np.float64)

        def ref(betas=(0.9, 0.95), eps=1e-6, wd=wd, key=key):
            return _adamw_reference(start[key], gs[0][key].numpy(), gs[1][key].numpy(), 5e-4, wd, betas, eps)

        assert np.abs(got - ref()).max() < 5e-8, key  # float32 rounding of |p| < 0.2 over two steps
        # The comparison is sharp enough to tell other betas / eps / decay apart (they differ by > 2e-6).
        for wrong in (ref(betas=(0.9, 0.999)), ref(betas=(0.8, 0.95)), ref(eps=1e-8), ref(wd=0.5 - wd)):
            assert np.abs(got - wrong).max() > 1e-6, key

    custom = dataclasses.replace(cfg, betas=(0.8, 0.9), eps=1e-8, run_dir=str(tmp_path / "r2"))
    assert all(g["betas"] == (0.8, 0.9) and g["eps"] == 1e-8 for g in Trainer(
        custom, model=small_model(("vision", "text", "imu"))).optimizer.param_groups)  # fmt: skip


# ------------------------------------------------------------------------------------------------ 2. schedule
def test_lr_factor_is_linear_warmup_then_cosine_to_the_floor():
    # total 100 steps, 10 warm-up steps, floor 0.1 of the peak; values worked out by hand.
    cases = {
        0: 0.1,  # first warm-up step: 1/10
        4: 0.5,  # mid warm-up: 5/10
        9: 1.0,  # last warm-up step
        10: 1.0,  # decay starts at the peak
        40: 0.1 + 0.9 * 0.75,  # a third of the decay: (1 + cos(pi/3)) / 2 = 0.75
        55: 0.55,  # half-way: (1 + cos(pi/2)) / 2 = 0.5
        99: 0.1 + 0.9 * (1 - math.cos(math.pi / 90)) / 2,  # last step: cos(89 pi / 90) = -cos(pi / 90)
        100: 0.1,  # the floor at the end
        150: 0.1,  # and past it
    }
    for step, want in cases.items():
        assert lr_factor(step, 100, 10, 0.1) == pytest.approx(want, abs=1e-12), step
    assert lr_factor(40, 100, 10) == pytest.approx(0.75, abs=1e-12) and lr_factor(100, 100, 10) == 0.0
    assert lr_factor(0, 100, 0) == 1.0 and lr_factor(50, 100, 0) == pytest.approx(0.5, abs=1e-12)
    steps = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert all(a < b for a, b in zip(steps[:9], steps[1:10], strict=True))  # rising warm-up
    assert all(a >= b for a, b in zip(steps[10:], steps[11:], strict=False))  # monotone decay
    assert min(steps[10:]) > 0.1 and min(steps) == 0.1  # never below the floor


def _imu_trainer(tmp_path, name, **kw):
    cfg = TrainConfig(pairs=[PairConfig(("vision", "imu"), _imu_world(32), batch_size=8)], cache=False,
                      progress=False, run_dir=str(tmp_path / name), **kw)  # fmt: skip
    return Trainer(cfg, model=small_model(("vision", "imu")))


def test_warmup_length_follows_table9_epochs_up_to_half_the_run(tmp_path):
    # IMU (Table 9): 8 epochs, 2 warm-up epochs, replication 1. 32 items / batch 8 -> 4 steps per epoch.
    tr = _imu_trainer(tmp_path, "table9")
    p = tr.cfg.pairs[0]
    assert (p.epochs, p.warmup_epochs, p.replication) == (8, 2, 1.0) and tr.plan.steps_per_epoch == 4
    assert (tr.total, tr.warmup) == (8 * 4, 2 * 4)  # 2 of 8 epochs: the whole 2 epochs of warm-up

    def schedule(name, **kw):
        t = _imu_trainer(tmp_path, name, **kw)
        return t.total, t.warmup

    assert schedule("e6", epochs=6) == (24, 8)
    assert schedule("e3", epochs=3) == (12, 6)  # 2 epochs would be 8 of 12 steps: capped at half the run
    assert schedule("we", warmup_epochs=0.5) == (32, 2)
    assert schedule("st", steps=40) == (40, 8)  # explicit steps, Table 9 warm-up epochs
    assert schedule("ws", steps=20, warmup_steps=5) == (20, 5)  # explicit warm-up steps are kept
    assert schedule("ws2", epochs=3, warmup_steps=7) == (12, 7)  # (not capped at half)
    assert schedule("ws3", steps=20, warmup_steps=50) == (20, 20)  # only at the run's length

    # The run applies it: an epoch-based run of 4 epochs (16 steps, 8 warm-up steps) logs and sets these factors.
    res = _imu_trainer(tmp_path, "run", epochs=4)
    assert (res.total, res.warmup) == (16, 8)
    out = res.run()
    assert out.step == 16
    recs = _metrics(tmp_path / "run")
    want = [(k + 1) / 8 if k < 8 else 0.5 * (1 + math.cos(math.pi * (k - 8) / 8)) for k in range(16)]
    assert [r["step"] for r in recs] == list(range(1, 17))
    assert [r["lr_factor"] for r in recs] == pytest.approx(want, abs=1e-12)
    assert {r["epoch"] for r in recs} == {0, 1, 2, 3}
    for g in res.optimizer.param_groups:  # the last step's LR: peak (Table 9: 5e-4) times the last factor
        assert g["lr"] == pytest.approx(5e-4 * want[-1], rel=1e-12)


# ------------------------------------------------------------------------------------------------ 3. drop-path
def test_drop_path_rates_reach_the_trained_trunks_as_a_linspace(tmp_path):
    g = torch.Generator().manual_seed(0)
    img = torch.randn(16, 3, 32, 32, generator=g)
    pairs = [PairConfig(("vision", "imu"), TensorPairs(("vision", "imu"), img, torch.randn(16, 6, 400, generator=g)),
                        batch_size=8),
             PairConfig(("vision", "depth"), TensorPairs(("vision", "depth"), img, torch.randn(16, 1, 32, 32, generator=g)),
                        batch_size=8, drop_path=0.3)]  # fmt: skip
    cfg = TrainConfig(pairs=pairs, encoders={"depth": "lora"}, steps=2, cache=False, progress=False,
                      run_dir=str(tmp_path / "r"))  # fmt: skip
    tr = Trainer(cfg, model=_model(("vision", "imu", "depth"), depth=4))
    enc = tr.model.encoders
    rates = {m: [blk.drop_path.p for blk in enc[m].trunk.blocks] for m in enc}
    assert tr.cfg.pairs[0].drop_path == 0.7  # Table 9 (IMU)
    assert rates["imu"] == pytest.approx(np.linspace(0, 0.7, 4).tolist(), abs=1e-12)
    assert rates["depth"] == pytest.approx(np.linspace(0, 0.3, 4).tolist(), abs=1e-12)  # LoRA-trained too
    assert rates["vision"] == [0.0] * 4  # the frozen anchor keeps none
    assert (
        tr.model.config.encoders["imu"].drop_path == 0.7
        and tr.model.config.encoders["vision"].drop_path == 0.0
    )
    # The rates are live: trained trunks are in training mode, and the last IMU block drops ~70% of its samples.
    assert all(blk.drop_path.training for blk in enc["imu"].trunk.blocks)
    assert not any(blk.drop_path.training for blk in enc["vision"].trunk.blocks)
    torch.manual_seed(0)
    kept = enc["imu"].trunk.blocks[-1].drop_path(torch.ones(4000, 1, 1))
    assert (kept == 0).float().mean().item() == pytest.approx(0.7, abs=0.03)
    values = torch.unique(kept).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.3)  # kept ones rescaled
    x = torch.randn(3, 5, 64)
    assert torch.equal(enc["vision"].trunk.blocks[-1].drop_path(x), x)


# ------------------------------------------------------------------------------------------------ 4. freq mask
def _bands(y: torch.Tensor) -> list[tuple[int, int]]:
    """(first bin, length) of the zeroed mel rows of each item of (B, 1, mel, frames); checks they are contiguous
    whole rows."""
    zero = y == 0
    rows = zero.all(-1)[:, 0]  # (B, mel)
    assert torch.equal(zero.any(-1)[:, 0], rows)  # nothing but whole mel rows is zeroed
    out = []
    for r in rows:
        idx = torch.nonzero(r).flatten().tolist()
        if idx:
            assert idx == list(range(idx[0], idx[0] + len(idx)))  # one contiguous band
        out.append((idx[0] if idx else -1, len(idx)))
    return out


def test_freq_mask_zeroes_one_seeded_band_of_fewer_than_width_bins_per_item(tmp_path):
    x = 1.0 + torch.rand(600, 1, 64, 20, generator=torch.Generator().manual_seed(0))  # no zeros anywhere
    before = x.clone()
    seeds = np.stack(
        [np.zeros(600), np.zeros(600), np.full(600, 7), np.arange(600), np.zeros(600)], 1
    ).astype(np.int64)
    state = torch.get_rng_state()
    y = freq_mask(x, 12, seeds)
    assert torch.equal(torch.get_rng_state(), state)  # seeded per item: torch's generator is not drawn from
    assert torch.equal(x, before)  # not in place
    kept = y != 0
    assert torch.equal(y[kept], x[kept]) and y.shape == x.shape  # everything outside the band untouched
    bands = _bands(y)
    lengths = [n for _, n in bands]
    assert set(lengths) == set(range(12))  # widths 0..11 all occur, never 12
    # Both edges are reachable.
    assert any(s == 0 for s, n in bands if n) and any(s + n == 64 for s, n in bands if n)
    assert len(set(bands)) > 100  # per item, not one band for the batch
    np.random.seed(999)
    torch.manual_seed(999)  # neither global generator plays a part
    assert torch.equal(freq_mask(x, 12, seeds), y)  # reproducible
    perm = np.random.default_rng(1).permutation(600)
    # Item b's band depends on seeds[b] alone.
    assert torch.equal(freq_mask(x[perm], 12, seeds[perm]), y[perm])
    assert torch.equal(freq_mask(x[5:6], 12, seeds[5:6]), y[5:6])
    other = seeds.copy()
    other[:, 2] = 8  # another step
    assert _bands(freq_mask(x, 12, other)) != bands
    assert freq_mask(x, 0, seeds) is x  # width 0: identity
    assert torch.equal(freq_mask(x, 1, seeds), x)  # width 1: bands of [0, 1) bins, i.e. none

    # The engine applies it (Table 9: 12 bins for audio) to the trained audio side, seeded by (seed, pair, step,
    # item, view): an item gets the same band wherever it sits in the batch (so on any number of ranks).
    g = torch.Generator().manual_seed(0)
    ds = TensorPairs(
        ("vision", "audio"), torch.randn(64, 3, 32, 32, generator=g), torch.randn(64, 1, 64, 104, generator=g)
    )
    tr = Trainer(TrainConfig(pairs=[PairConfig(("vision", "audio"), ds, batch_size=64, replication=1.0)], steps=2,
                             cache=False, progress=False, run_dir=str(tmp_path / "a")), model=small_model(("vision", "audio")))  # fmt: skip
    assert tr.cfg.pairs[0].freq_mask == 12
    batch = tr.plan.epoch(0)[0]
    a = 1.0 + torch.rand(64, 1, 64, 104, generator=g)
    masked = tr._per_step_aug(batch, "audio", a)
    assert max(n for _, n in _bands(masked)) == 11 and not torch.equal(masked, a)
    flipped = dataclasses.replace(batch, items=batch.items[::-1].copy(), views=batch.views[::-1].copy())
    assert torch.equal(tr._per_step_aug(flipped, "audio", a.flip(0)), masked.flip(0))
    assert torch.equal(tr._per_step_aug(batch, "audio", a), masked)
    tr.state["step"] = 1
    assert not torch.equal(tr._per_step_aug(batch, "audio", a), masked)  # a new draw every step
    assert torch.equal(tr._per_step_aug(batch, "depth", a), a)  # audio only


# ------------------------------------------------------------------------------------------------ 5. AudioSet
TONES = [250.0, 500.0, 1000.0, 2000.0, 3000.0, 4500.0]  # second k of the video plays TONES[k]
FPS, SR = 10, 16000


def _tone_video(path: Path) -> None:
    """A 6 s mp4: frame k has grey level 4k; the AAC audio plays a different pure tone every second."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=FPS)
        v.width, v.height, v.pix_fmt = 48, 32, "yuv420p"
        a = c.add_stream("aac", rate=SR)
        a.layout = "mono"
        for k in range(len(TONES) * FPS):
            frame = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 4 * k, np.uint8), format="rgb24")
            for p in v.encode(frame):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        t = np.arange(len(TONES) * SR) / SR
        phase = 2 * np.pi * np.cumsum(np.array(TONES)[t.astype(int)]) / SR  # continuous phase across changes
        wave = (0.3 * np.sin(phase) * 32767).astype(np.int16)
        for s in range(0, len(wave), 1024):
            af = av.AudioFrame.from_ndarray(wave[None, s : s + 1024], format="s16", layout="mono")
            af.sample_rate, af.pts, af.time_base = SR, s, Fraction(1, SR)
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)


def _kaldi_bin(freq: float, bins: int = 64) -> int:
    """The Kaldi mel filter (20 Hz .. Nyquist, centres evenly spaced on 1127 ln(1 + f / 700)) nearest `freq`."""
    mel = lambda f: 1127 * math.log(1 + f / 700)  # noqa: E731
    lo, hi = mel(20.0), mel(SR / 2)
    centres = [lo + (i + 1) * (hi - lo) / (bins + 1) for i in range(bins)]
    return int(np.argmin([abs(mel(freq) - c) for c in centres]))


def _tone_rows(tmp_path):
    _tone_video(tmp_path / "Yabcdefghijk.mp4")
    rows = audioset_pairs(tmp_path, times_per_video=4)  # centres of 2 s windows in 6 s: 1, 2.333, 3.667, 5
    extra = {**rows[0], "times": [0.2, 5.4]}  # near the start (the clip stays inside the file) and inside
    return rows + [extra], FilePairs(("video", "audio"), rows + [extra])


def _expected_bins(t: float, duration: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per fbank frame (25 ms window, 10 ms hop) of the clip centred on t: the tone's bin, and whether the frame
    lies clear (>= 20 ms) of a tone change."""
    start = max(0.0, t - duration / 2)
    centre = start + 0.0125 + 0.01 * np.arange(frames)
    clear = np.abs(centre - np.round(centre)) >= 0.02
    return np.array([_kaldi_bin(TONES[min(int(c), len(TONES) - 1)]) for c in centre]), clear


def test_audioset_audio_clip_is_centred_on_the_frame_time(tmp_path):
    rows, ds = _tone_rows(tmp_path)
    times = [(0, v, t) for v, t in enumerate(rows[0]["times"])] + [(1, 0, 0.2), (1, 1, 5.4)]
    assert [t for _, _, t in times] == pytest.approx([1.0, 2.333, 3.667, 5.0, 0.2, 5.4], abs=1e-3)
    idx, views = np.array([i for i, _, _ in times]), np.array([v for _, v, _ in times])
    cfg = get_config("imagebind_tiny").encoders["audio"]  # 64 mel bins, 104 frames
    duration = shape_options(cfg)["clip_duration"]
    audio = ds.load(1, idx, views, cfg)
    assert audio.shape == (6, 1, 64, 104)
    real = 104  # every input frame holds audio (see test_audioset_clip_fills_every_input_frame)
    assert len({_kaldi_bin(f) for f in TONES}) == len(TONES)
    for row, (_, _, t) in enumerate(times):
        want, clear = _expected_bins(t, duration, real)
        # The dominant mel bin per frame (the loader's normalisation is monotone).
        got = audio[row, 0, :, :real].argmax(0).numpy()
        assert clear.sum() > 90 and np.array_equal(got[clear], want[clear]), (t, got.tolist(), want.tolist())
    # A clip that starts at t (instead of centring on it) would be off by half a clip: it would not match.
    shifted, clear = _expected_bins(1.0 + duration / 2, duration, real)
    assert not np.array_equal(audio[0, 0, :, :real].argmax(0).numpy()[clear], shifted[clear])
    # The frame of the same row and time is the video frame at that time (grey level 4 per frame).
    frames = ds.load(0, idx, views, get_config("imagebind_tiny").encoders["vision"])
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    grey = ((frames * std + mean) * 255).mean((1, 2, 3))
    assert grey.tolist() == pytest.approx([4 * round(t * FPS) for _, _, t in times], abs=4)


def test_audioset_clip_fills_every_input_frame(tmp_path):
    rows, ds = _tone_rows(tmp_path)
    cfg = get_config("imagebind_tiny").encoders["audio"]
    audio = ds.load(1, np.array([0]), np.array([1]), cfg)
    want, _ = _expected_bins(rows[0]["times"][1], shape_options(cfg)["clip_duration"], 104)
    assert audio[0, 0, :, -1].argmax().item() == want[-1]  # the last input frame holds the tone, not padding


# ------------------------------------------------------------------------------------------------ 6. torchrun
def test_torchrun_two_cpu_ranks_through_the_cli(tmp_path):
    """`torchrun --standalone --nproc_per_node 2 -m bindkit train --config ...` on gloo: the run directory gets
    checkpoints (with both ranks' RNG states), metrics for every step and a final model equal to one process."""
    image_depth_files(tmp_path, 16, size=32)
    save_model(small_model(), tmp_path / "model")
    cfg = {"model": "model", "pairs": [{"modalities": ["vision", "depth"], "data": "pairs.jsonl", "batch_size": 8,
           "replication": 1.0, "lr": 1e-3}], "steps": 3, "warmup_steps": 1, "checkpoint_every": 2,
           "device": "cpu", "num_workers": 1, "cache_dir": str(tmp_path / "cache")}  # fmt: skip
    (tmp_path / "train.json").write_text(json.dumps(cfg))
    torchrun = Path(sys.executable).parent / "torchrun"
    launcher = [str(torchrun)] if torchrun.is_file() else [sys.executable, "-m", "torch.distributed.run"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}  # fmt: skip
    env["OMP_NUM_THREADS"] = "1"
    run = tmp_path / "run"
    proc = subprocess.run([*launcher, "--standalone", "--nproc_per_node", "2", "-m", "bindkit", "train", "--config",
                           str(tmp_path / "train.json"), "--run-dir", str(run), "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert f"run {run}: step 3/3" in proc.stdout
    assert (run / "checkpoints" / "latest").read_text() == "step_00000003"
    for step in ("step_00000002", "step_00000003"):
        ck = run / "checkpoints" / step
        assert {p.name for p in ck.iterdir()} >= {"model", "optimizer.safetensors", "trainer.json",
                                                 "rng-rank0.safetensors", "rng-rank1.safetensors"}  # fmt: skip
    assert json.loads((run / "checkpoints" / "step_00000003" / "trainer.json").read_text())["step"] == 3
    recs = _metrics(run)
    assert [r["step"] for r in recs] == [1, 2, 3] and all(r["batch"] == 8 for r in recs)  # one line per step
    # The same config in one process (the whole batch of 8 per step) ends at the same weights.
    one = train(load_config(tmp_path / "train.json", run_dir=str(tmp_path / "single"), progress=False))
    two = bindkit.load_model(run / "final" / "model").state_dict()
    ref = one.model.state_dict()
    assert two.keys() == ref.keys() and all(torch.allclose(two[k], ref[k], atol=1e-5) for k in ref)
    assert [r["loss"] for r in recs] == pytest.approx(
        [r["loss"] for r in _metrics(tmp_path / "single")], abs=1e-5
    )


# ------------------------------------------------------------------------------------------------ 8. resume
RESUME_PAIR = {"drop_path": 0.3, "augment": True, "views": 3, "erase": 0.5}


def _resume_run(tmp_path, name, kind, **kw):
    if kind == "lora":
        cfg = config(tmp_path, name, data=world(48), pair={**RESUME_PAIR, "lr": 1e-2}, steps=10, warmup_steps=2,
                     checkpoint_every=4, encoders={"depth": "lora"}, lora=LoRAConfig(rank=2, alpha=4.0), **kw)  # fmt: skip
    else:  # a file manifest: the next batch loads on the prefetch thread
        cfg = config(tmp_path, name, data=str(tmp_path / "files" / "pairs.jsonl"), pair={**RESUME_PAIR, "batch_size": 8},
                     steps=10, warmup_steps=2, checkpoint_every=4, num_workers=1, **kw)  # fmt: skip
    return train(cfg, model=small_model(seed=1))


@pytest.mark.parametrize("kind", ["lora", "files"])
def test_stop_and_resume_is_bit_identical_with_lora_and_with_file_manifests(tmp_path, kind, monkeypatch):
    pools = []
    if kind == "files":
        (tmp_path / "files").mkdir()
        image_depth_files(tmp_path / "files", 24, size=32)

        class Pool(ThreadPoolExecutor):
            def __init__(self, n, *a, **kw):
                pools.append(n)
                super().__init__(n, *a, **kw)

        monkeypatch.setattr(engine_mod, "ThreadPoolExecutor", Pool)
    full = _resume_run(tmp_path, "full", kind)
    part = _resume_run(tmp_path, "part", kind, stop_after=5)  # between checkpoints (4 and 8)
    assert part.stopped and part.step == 5
    again = _resume_run(tmp_path, "part", kind, stop_after=2, resume=True)
    assert again.stopped and again.step == 7
    done = _resume_run(tmp_path, "part", kind, resume=True)
    assert not done.stopped and done.step == 10
    assert _same_state(full.model.state_dict(), done.model.state_dict())
    assert _untimed(_metrics(tmp_path / "full")) == _untimed(_metrics(tmp_path / "part"))
    if kind == "lora":
        a, b = (load_file(r / "final" / "lora.safetensors") for r in (tmp_path / "full", tmp_path / "part"))
        assert a.keys() == b.keys() and len(a) == 2 * 2 * 2 and all(torch.equal(a[k], b[k]) for k in a)
        assert any(v.abs().sum() > 0 for k, v in a.items() if k.endswith("lora_B"))  # the adapters trained
    else:
        assert pools == [1, 1, 1, 1]  # every session loaded its batches ahead on a background thread


# ------------------------------------------------------------------------------------------------ 9. LoRA blocks
def test_lora_blocks_option_adapts_only_the_listed_blocks(tmp_path):
    assert TrainConfig.from_dict({"lora": {"blocks": [0, 2]}}).lora.blocks == (0, 2)  # from JSON
    base = _model(("vision", "depth"), depth=3)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    cfg = config(tmp_path, steps=3, encoders={"depth": "lora"}, pair={"lr": 1e-2},
                 lora=LoRAConfig(rank=2, alpha=4.0, blocks=(0, 2)))  # fmt: skip
    tr = Trainer(cfg, model=base)
    want = {
        f"encoders.depth.trunk.blocks.{i}.attn.{w}"
        for i in (0, 2)
        for w in ("in_proj_weight", "out_proj.weight")
    }
    assert {path for path, _ in adapters(tr.model)} == want
    blocks = tr.model.encoders["depth"].trunk.blocks
    assert not any(isinstance(m, LoRADelta) for m in blocks[1].modules())
    trainable = {n for n, p in tr.model.named_parameters() if p.requires_grad}
    assert trainable == {f"{w.rsplit('.', 1)[0]}.parametrizations.{w.rsplit('.', 1)[1]}.0.{s}" for w in want
                         for s in "AB"}  # fmt: skip
    res = tr.run()
    assert set(load_file(res.lora_path)) == {f"{w}.lora_{s}" for w in want for s in "AB"}
    final = res.model.state_dict()  # merged
    changed = {k for k, v in before.items() if not torch.equal(final[k], v)}
    assert changed == want  # only the adapted projections of blocks 0 and 2 moved


# ------------------------------------------------------------------------------------------------ 10. SIGKILL
KILL_PAIR = {"drop_path": 0.3, "augment": True, "views": 3, "erase": 0.5}


def _kill_config(root, name: str, **kw) -> TrainConfig:
    """10 steps, a checkpoint every 3 (so at 3, 6, 9, 10); imported by the child process as well."""
    return config(Path(root), name, data=world(48), pair=KILL_PAIR, steps=10, warmup_steps=2, checkpoint_every=3,
                  **kw)  # fmt: skip


CHILD = r"""
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
import bindkit.train.ckpt as ckpt
from _train_utils import small_model
from test_train_more import _kill_config
from bindkit.train import train

root, marker = Path(sys.argv[1]), Path(sys.argv[2])
real = ckpt.save_file

def save_file(tensors, path, metadata=None):
    real(tensors, path, metadata=metadata)
    if ".step_00000006.tmp" in str(path) and "rng-rank0" in str(path):
        marker.write_text("inside checkpoint 6")
        time.sleep(600)  # wait here to be killed

ckpt.save_file = save_file
train(_kill_config(root, "killed"), model=small_model(seed=1))
"""


def test_sigkill_between_checkpoints_then_resume_equals_an_uninterrupted_run(tmp_path):
    """A child process trains and is killed with SIGKILL (no handler can run) at a deterministic moment: in the
    middle of writing checkpoint 6, after the metrics of steps 4-6 were written past the last complete checkpoint
    (3). Resuming continues from checkpoint 3, drops the stale metric lines and ends bit-identical to an
    uninterrupted run."""
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    with open(tmp_path / "child.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(marker)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.time() + 240
            while not marker.exists():
                assert proc.poll() is None, (tmp_path / "child.log").read_text()[-4000:]
                assert time.time() < deadline, "the child never reached checkpoint 6"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)  # kill -9
            proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    run = tmp_path / "killed"
    assert (run / "checkpoints" / "latest").read_text() == "step_00000003"
    assert (run / "checkpoints" / ".step_00000006.tmp").is_dir()  # the torn checkpoint is left behind
    assert [r["step"] for r in _metrics(run)] == [1, 2, 3, 4, 5, 6]  # 4-6 are past the last checkpoint
    full = train(_kill_config(tmp_path, "full"), model=small_model(seed=1))
    done = train(_kill_config(tmp_path, "killed", resume=True), model=small_model(seed=1))
    assert done.step == 10 and not done.stopped
    assert _same_state(full.model.state_dict(), done.model.state_dict())
    recs = _metrics(run)
    assert [r["step"] for r in recs] == list(range(1, 11))  # no duplicate or stale lines
    assert _untimed(recs) == _untimed(_metrics(tmp_path / "full"))
    assert not list((run / "checkpoints").glob(".*.tmp"))
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000009", "step_00000010"]


# ------------------------------------------------------------------------------------------------ 11. bf16
def test_bf16_runs_the_trained_encoder_under_autocast_with_fp32_loss_and_optimizer(tmp_path, monkeypatch):
    seen = {}
    real_loss = engine_mod.local_clip_loss

    def spy_loss(a, b, scale):
        loss, acc = real_loss(a, b, scale)
        seen.setdefault("loss", []).append((a.dtype, b.dtype, loss.dtype))
        return loss, acc

    monkeypatch.setattr(engine_mod, "local_clip_loss", spy_loss)
    out = {}
    for precision in ("bf16", "fp32"):
        tr = Trainer(config(tmp_path, precision, precision=precision), model=small_model())
        enc = tr.model.encoders["depth"]
        rec, names = [], {m: n for n, m in enc.named_modules()}

        def hook(mod, inp, o, rec=rec, names=names):
            rec.append(
                (names[mod], o.dtype, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
            )

        hooks = [m.register_forward_hook(hook) for m in names]
        seen.clear()
        loss, _ = tr.forward_backward(tr.plan.epoch(0)[0])
        norm = tr.optimizer_step(0)
        for h in hooks:
            h.remove()
        assert {"stem.proj", "trunk.blocks.0.attn", "trunk.blocks.1.mlp", "head", ""} <= {n for n, *_ in rec}
        if precision == "bf16":
            assert all(dt == torch.bfloat16 and on and ad == torch.bfloat16 for _, dt, on, ad in rec), rec
        else:
            assert all(dt == torch.float32 and not on for _, dt, on, _ in rec), rec
        assert seen["loss"] == [(torch.float32, torch.float32, torch.float32)]  # the loss in fp32
        for p in tr.model.parameters():
            assert p.dtype == torch.float32
        for st in tr.optimizer.state.values():
            assert st["exp_avg"].dtype == st["exp_avg_sq"].dtype == torch.float32
        assert tr.optimizer.state and math.isfinite(norm)
        out[precision] = loss
    assert out["bf16"] != out["fp32"] and out["bf16"] == pytest.approx(out["fp32"], abs=0.05)


# ------------------------------------------------------------------------------------------------ 12. checkpointing
def test_activation_checkpointing_recomputes_trained_blocks_and_keeps_gradients(tmp_path, monkeypatch):
    import bindkit.trunk as trunk_mod

    calls = []
    real = trunk_mod.checkpoint

    def spy(fn, *args, **kw):
        calls.append(fn)
        return real(fn, *args, **kw)

    monkeypatch.setattr(trunk_mod, "checkpoint", spy)
    out = {}
    for ckpt in (False, True):
        # No cache: the frozen vision encoder runs every step too (under no_grad, never checkpointed).
        tr = Trainer(config(tmp_path, f"g{ckpt}", grad_checkpointing=ckpt, cache=False, pair={"drop_path": 0.3}),
                     model=small_model())  # fmt: skip
        counts = {}
        for m in ("vision", "depth"):
            for i, blk in enumerate(tr.model.encoders[m].trunk.blocks):
                # Count calls of forward itself (the recomputation does not run module hooks again).
                def counted(x, fwd=blk.forward, key=(m, i), counts=counts):
                    counts[key] = counts.get(key, 0) + 1
                    return fwd(x)

                blk.forward = counted
        calls.clear()
        tr.forward_backward(tr.plan.epoch(0)[0])
        out[ckpt] = grads(tr.model), torch.get_rng_state(), dict(counts), list(calls)
    g0, rng0, counts0, calls0 = out[False]
    g1, rng1, counts1, calls1 = out[True]
    # Only the trained trunk's blocks go through torch.utils.checkpoint, and only when asked.
    assert calls0 == [] and calls1 == list(tr.model.encoders["depth"].trunk.blocks)
    assert counts0 == {("vision", 0): 1, ("vision", 1): 1, ("depth", 0): 1, ("depth", 1): 1}
    assert counts1 == {("vision", 0): 1, ("vision", 1): 1, ("depth", 0): 2, ("depth", 1): 2}  # recomputed
    assert g0.keys() == g1.keys() and {k.split(".")[1] for k in g0} == {"depth"}
    assert all(torch.equal(g0[k], g1[k]) for k in g0)  # same drop-path masks in the recomputation
    assert torch.equal(rng0, rng1)  # and no extra draws from the generator
