"""Table 9's image views: RandAugment's ops against PIL (what timm runs) and hand computations, seeded determinism,
image/depth alignment through the geometric ops, the per-pair defaults, and a short run with them."""

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from _train_utils import small_model
from bindkit.data.images import CLIP_MEAN, CLIP_STD
from bindkit.train import PairConfig, TensorPairs, TrainConfig, Trainer, resolve, train
from bindkit.train.augment import (
    BASE,
    GEOMETRIC,
    OPS,
    PHOTOMETRIC,
    ViewAug,
    apply_view,
    freq_mask,
    randaug_photometric,
    random_erase,
    view_params,
    warp,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _row(op: str, mag: float, sign: float = 1.0, n: int = 1) -> torch.Tensor:
    """View params of the whole image (no crop, flip or jitter) and one RandAugment op."""
    return torch.tensor(
        [[0.5, 0.5, 1.0, 1.0, 0.0, 1.0, 1.0, OPS.index(op), mag, sign]] * n, dtype=torch.float64
    )


def _u8(seed: int = 0, shape=(2, 12, 10, 3)) -> np.ndarray:
    """Random 8-bit RGB images; the second one low-contrast (so AutoContrast and Equalize have work to do)."""
    u8 = np.random.default_rng(seed).integers(20, 230, shape, dtype=np.uint8)
    u8[1] = (u8[1] * 0.5 + 40).astype(np.uint8)
    return u8


def _tensor(u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255


def _normalise(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


def _keys(n: int) -> list[str]:
    """Content keys like the datasets' (hex digests)."""
    return [hashlib.blake2b(str(i).encode(), digest_size=16).hexdigest() for i in range(n)]


# ------------------------------------------------------------------------------------------------ photometric ops
def _equalize_numpy(channel: np.ndarray) -> np.ndarray:
    """PIL's equalize of one 8-bit channel, written out: lut from the cumulative histogram."""
    h = np.bincount(channel.ravel(), minlength=256)
    used = h[h > 0]
    step = (used.sum() - used[-1]) // 256 if len(used) > 1 else 0
    if step == 0:
        return channel
    lut = np.minimum((step // 2 + np.concatenate([[0], np.cumsum(h)[:-1]])) // step, 255)
    return lut[channel].astype(np.uint8)


@pytest.mark.parametrize(
    "op, hand",
    [
        ("Invert", lambda q: 255 - q),
        ("Posterize", lambda q: q & 0b11100000),  # magnitude 9: int(0.9 * 4) = 3 bits kept
        ("Solarize", lambda q: np.where(q >= 230, 255 - q, q)),  # threshold int(0.9 * 256) = 230
        (
            "SolarizeAdd",
            lambda q: np.where(q < 128, np.minimum(q.astype(int) + 99, 255), q),
        ),  # add int(0.9 * 110)
        ("Equalize", lambda q: np.stack([np.stack([_equalize_numpy(c) for c in im]) for im in q])),
    ],
)
def test_level_ops_equal_hand_computations(op, hand):
    q = _u8().transpose(0, 3, 1, 2)  # (B, 3, H, W) levels
    out = randaug_photometric(torch.from_numpy(q).float() / 255, _row(op, 9.0, n=2))
    assert torch.equal((out * 255).round().long(), torch.from_numpy(np.asarray(hand(q), dtype=np.int64)))


def test_photometric_ops_match_pil_as_timm_calls_it():
    u8 = _u8(1)
    x, pil = _tensor(u8), [Image.fromarray(u) for u in u8]
    f = 1.8 * 0.9 + 0.1  # the enhance factor of magnitude 9
    refs = {"AutoContrast": ImageOps.autocontrast, "Equalize": ImageOps.equalize, "Invert": ImageOps.invert,
            "Posterize": lambda im: ImageOps.posterize(im, 3), "Solarize": lambda im: ImageOps.solarize(im, 230),
            "Color": lambda im: ImageEnhance.Color(im).enhance(f),
            "Contrast": lambda im: ImageEnhance.Contrast(im).enhance(f),
            "Brightness": lambda im: ImageEnhance.Brightness(im).enhance(f),
            "Sharpness": lambda im: ImageEnhance.Sharpness(im).enhance(f)}  # fmt: skip
    assert set(refs) | {"SolarizeAdd"} == set(PHOTOMETRIC)  # SolarizeAdd is timm's own: checked by hand above
    exact = {"Equalize", "Invert", "Posterize", "Solarize"}
    for op, fn in refs.items():
        ref = _tensor(np.stack([np.asarray(fn(im)) for im in pil]))
        err = (randaug_photometric(x, _row(op, 9.0, n=2)) - ref).abs().max() * 255
        assert err < (1e-3 if op in exact else 1.5), op  # PIL rounds to 8 bits between steps


def test_enhance_and_autocontrast_by_hand():
    """Magnitude 5 gives factor 1.0 (the identity); magnitude 0 factor 0.1."""
    x = _tensor(_u8(2))
    gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    for op in ("Color", "Contrast", "Brightness", "Sharpness"):
        assert torch.allclose(randaug_photometric(x, _row(op, 5.0, n=2)), x, atol=1e-6), op
    f = torch.tensor(0.1)  # magnitude 0
    assert torch.allclose(randaug_photometric(x, _row("Color", 0.0, n=2)), gray + f * (x - gray), atol=1e-6)
    assert torch.allclose(randaug_photometric(x, _row("Brightness", 0.0, n=2)), f * x, atol=1e-6)
    lo, hi = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
    assert torch.allclose(
        randaug_photometric(x, _row("AutoContrast", 9.0, n=2)), (x - lo) / (hi - lo), atol=1e-6
    )


# ------------------------------------------------------------------------------------------------ geometric ops
def test_rotate_and_translate_by_hand():
    a = torch.arange(64, dtype=torch.float32).view(1, 1, 8, 8)
    ccw = warp(a, _row("Rotate", 30.0))  # level 3 -> 90 degrees, counter-clockwise (PIL)
    assert torch.allclose(ccw, torch.rot90(a, 1, (2, 3)), atol=1e-4)
    assert torch.allclose(warp(a, _row("Rotate", 30.0, -1.0)), torch.rot90(a, -1, (2, 3)), atol=1e-4)
    mag = 0.25 / 0.45 * 10  # translate by a quarter of the width: 2 pixels; the uncovered part is 0
    left = warp(a, _row("TranslateX", mag))
    assert torch.allclose(left[..., :6], a[..., 2:], atol=1e-4) and (left[..., 6:] == 0).all()
    down = warp(a, _row("TranslateY", mag, -1.0))
    assert torch.allclose(down[..., 2:, :], a[..., :6, :], atol=1e-4) and (down[..., :2, :] == 0).all()


def test_shear_by_hand():
    """ShearX by f about the top-left corner (PIL): output (y, x) reads input (y, x + f * (y + 0.5)), bilinear."""
    a = np.random.default_rng(3).random((10, 12)).astype(np.float32)
    out = warp(torch.from_numpy(a)[None, None], _row("ShearX", 10.0))[0, 0].numpy()  # f = 0.3
    for y in range(10):
        xs = np.arange(12) + 0.3 * (y + 0.5)
        ok = xs <= 11
        assert np.allclose(out[y, ok], np.interp(xs[ok], np.arange(12), a[y]), atol=1e-5)
        assert (out[y, xs > 11.5] == 0).all()


@pytest.mark.parametrize("op, sign", [(op, s) for op in GEOMETRIC for s in (1.0, -1.0)])
def test_geometric_ops_match_pil_bilinear(op, sign):
    a = np.random.default_rng(4).random((14, 16)).astype(np.float32)  # not square: checks the aspect handling
    im, m = Image.fromarray(a), sign * 0.9  # magnitude 9
    if op == "Rotate":
        ref = im.rotate(30 * m, resample=Image.BILINEAR)
    else:
        f, t = 0.3 * m, 0.45 * m
        data = {"ShearX": (1, f, 0, 0, 1, 0), "ShearY": (1, 0, 0, f, 1, 0), "TranslateX": (1, 0, t * 16, 0, 1, 0),
                "TranslateY": (1, 0, 0, 0, 1, t * 14)}[op]  # fmt: skip
        ref = im.transform(im.size, Image.AFFINE, data, resample=Image.BILINEAR)
    out = warp(torch.from_numpy(a)[None, None], _row(op, 9.0, sign))[0, 0].numpy()
    assert np.allclose(out, np.asarray(ref), atol=1e-5)


def test_crop_then_ops_compose_in_one_map():
    """A crop followed by TranslateX equals the crop of a shifted box; photometric ops leave geometry alone."""
    a = torch.arange(256, dtype=torch.float32).view(1, 1, 16, 16)
    crop = _row("Invert", 9.0)
    crop[0, :4] = torch.tensor([0.5, 0.5, 0.5, 0.5])  # the central 8x8, resampled to 16x16
    shifted = crop.clone()
    shifted[0, BASE:] = torch.tensor(
        [OPS.index("TranslateX"), 0.25 / 0.45 * 10, 1.0]
    )  # a quarter of the crop
    moved = crop.clone()
    moved[0, 0] = 0.5 + 0.25 * 0.5
    assert torch.allclose(warp(a, shifted), warp(a, moved), atol=1e-4)
    assert torch.equal(warp(a, crop), warp(a, crop[:, :BASE]))


# ------------------------------------------------------------------------------------------------ views
def test_view_params_are_seeded_and_follow_rand_m9_mstd05():
    keys, views = _keys(500), np.arange(500) % 4
    p = view_params(keys, views, seed=3)
    assert p.shape == (500, BASE + 6) and torch.equal(p, view_params(keys, views, seed=3))
    assert not torch.equal(p, view_params(keys, views + 1, seed=3))
    assert not torch.equal(p, view_params(keys, views, seed=4))
    area, ratio = p[:, 2] * p[:, 3], p[:, 2] / p[:, 3]
    assert ((area >= 0.08 - 1e-9) & (area <= 1) & (ratio >= 0.75 - 1e-9) & (ratio <= 4 / 3 + 1e-9)).all()
    assert 0.4 < p[:, 4].mean() < 0.6 and ((p[:, 5:7] >= 0.6) & (p[:, 5:7] <= 1.4)).all()
    ops, mag, sign = p[:, BASE::3], p[:, BASE + 1 :: 3], p[:, BASE + 2 :: 3]
    assert 0.45 < (ops >= 0).double().mean() < 0.55  # each op applied with probability 0.5
    assert set(ops[ops >= 0].long().tolist()) == set(range(len(OPS)))
    assert (mag >= 0).all() and (mag <= 10).all() and abs(mag.mean() - 9) < 0.1 and 0.4 < mag.std() < 0.55
    assert set(sign.unique().tolist()) == {-1.0, 1.0}
    off = view_params(keys[:5], views[:5], seed=3, aug=ViewAug(ops=0, jitter=0.0))
    assert off.shape == (5, BASE) and (off[:, 5:7] == 1).all()


def test_views_are_deterministic_and_differ_between_views():
    img = _normalise(_tensor(_u8(5, (4, 16, 16, 3))))
    keys = _keys(4)
    a = apply_view(img, "vision", view_params(keys, np.zeros(4), 0))
    assert torch.equal(a, apply_view(img, "vision", view_params(keys, np.zeros(4), 0)))
    b = apply_view(img, "vision", view_params(keys, np.ones(4), 0))
    assert all(not torch.allclose(a[i], b[i]) for i in range(4))
    assert apply_view(torch.randn(4, 6, 10), "imu", view_params(keys, np.zeros(4), 0)).shape == (4, 6, 10)


def test_image_and_depth_get_the_same_geometry():
    """A depth map equal to one image channel stays equal after the view: crop, flip, rotate, shear, translate."""
    img = _normalise(_tensor(_u8(6, (64, 16, 16, 3))))
    depth = img[:, :1].clone()
    p = view_params(_keys(64), np.arange(64) % 4, seed=1, aug=ViewAug(jitter=0.0))
    ops = p[:, BASE::3]
    photometric = torch.isin(ops, torch.tensor([float(OPS.index(n)) for n in PHOTOMETRIC], dtype=p.dtype))
    geometric = torch.isin(ops, torch.tensor([float(OPS.index(n)) for n in GEOMETRIC], dtype=p.dtype))
    assert geometric.any(1).sum() > 10  # plenty of views with RandAugment geometry
    d = apply_view(depth, "depth", p)
    geo_only = p.clone()
    geo_only[:, BASE::3] = torch.where(photometric, -1.0, ops)  # the same views without their colour ops
    assert torch.equal(d, apply_view(depth, "depth", geo_only))  # colour ops never touch the depth side
    assert torch.allclose(apply_view(img, "vision", geo_only)[:, :1], d, atol=1e-5)
    assert not torch.allclose(d, apply_view(depth, "depth", p[:, :BASE]), atol=1e-3)  # the ops moved pixels


def test_the_engine_loads_aligned_views(tmp_path):
    g = torch.Generator().manual_seed(0)
    img = _normalise(torch.rand(32, 3, 32, 32, generator=g))
    data = TensorPairs(("vision", "depth"), img, img[:, :1].clone())
    cfg = TrainConfig(pairs=[PairConfig(("vision", "depth"), data, batch_size=16, replication=1.0, jitter=0.0)],
                      steps=1, progress=False, run_dir=str(tmp_path / "r"), cache_dir=str(tmp_path / "c"))  # fmt: skip
    tr = Trainer(cfg, model=small_model())
    items, views = np.repeat(np.arange(32), 4), np.tile(np.arange(4), 32)
    p = view_params([data.content_keys(0)[i] for i in items], views, 0, tr._view_aug(0))
    ops = p[:, BASE::3]
    photometric = torch.isin(ops, torch.tensor([float(OPS.index(n)) for n in PHOTOMETRIC], dtype=p.dtype))
    keep = ~photometric.any(1)
    assert torch.isin(ops[keep], torch.tensor([float(OPS.index(n)) for n in GEOMETRIC], dtype=p.dtype)).any()
    v, d = tr._load(0, 0, items, views), tr._load(0, 1, items, views)
    assert torch.allclose(v[keep][:, :1], d[keep], atol=1e-5)
    assert not torch.allclose(v[:, :1], d, atol=1e-3)  # RandAugment's colour ops change the image side only


def test_per_step_augmentation_is_the_same_on_any_number_of_ranks():
    x = torch.randn(64, 1, 16, 16)
    seeds = np.stack([np.zeros(64), np.zeros(64), np.full(64, 5), np.arange(64), np.arange(64) % 3], 1)
    full = random_erase(x, 0.25, seeds)
    halves = torch.cat([random_erase(x[:32], 0.25, seeds[:32]), random_erase(x[32:], 0.25, seeds[32:])])
    assert torch.equal(full, halves)
    hit = (full != x).flatten(1).any(1).float()
    assert 0.05 < hit.mean() < 0.5  # p = 0.25
    other = seeds.copy()
    other[:, 2] += 1  # another step: other boxes
    assert not torch.equal(full, random_erase(x, 0.25, other))
    spec = torch.randn(8, 1, 128, 20)
    masked = freq_mask(spec, 12, seeds[:8])
    assert torch.equal(
        masked, torch.cat([freq_mask(spec[:4], 12, seeds[:4]), freq_mask(spec[4:], 12, seeds[4:8])])
    )
    bands = (masked == 0).all(-1).sum(-1).flatten()
    assert (bands < 12).all() and (bands > 0).any()


# ------------------------------------------------------------------------------------------------ defaults
def test_table9_defaults_turn_views_on_for_depth_and_thermal_only():
    pairs = [PairConfig(("vision", m), "x.jsonl") for m in ("depth", "thermal", "imu", "audio")]
    pairs.append(PairConfig(("vision", "text"), "x.jsonl"))
    res = resolve(TrainConfig(pairs=pairs, encoders={"text": "train"}))
    got = {p.modalities[1]: (p.augment, p.erase, p.randaug, p.randaug_magnitude, p.randaug_std, p.jitter,
                             p.crop_scale, p.freq_mask) for p in res.pairs}  # fmt: skip
    on = (True, 0.25, 2, 9.0, 0.5, 0.4, (0.08, 1.0), 0)
    assert got["depth"] == on and got["thermal"] == on
    assert got["imu"][:2] == (False, 0.0) and got["text"][:2] == (False, 0.0)
    assert got["audio"][:2] == (False, 0.0) and got["audio"][-1] == 12
    again = resolve(TrainConfig.from_dict(json.loads(json.dumps(res.to_dict()))))  # config.json round trip
    assert again.pairs[0].crop_scale == (0.08, 1.0) and again.to_dict() == res.to_dict()
    with pytest.raises(ValueError, match="crop_scale"):
        resolve(TrainConfig(pairs=[PairConfig(("vision", "depth"), "x.jsonl", crop_scale=(0.5, 0.2))]))


def test_the_demo_pairs_keep_augmentation_off():
    from bindkit.demo.training import _pair

    phase = SimpleNamespace(batch_size=8, lr=1e-3, weight_decay=0.05, share={})
    for m in ("depth", "thermal"):
        p = resolve(TrainConfig(pairs=[_pair("vision", m, torch.zeros(4, 3, 8, 8), torch.zeros(4, 1, 8, 8), phase,
                                             0.1)])).pairs[0]  # fmt: skip
        assert (p.augment, p.erase, p.randaug) == (False, 0.0, 0)


def test_a_short_run_with_the_defaults(tmp_path):
    g = torch.Generator().manual_seed(0)
    img = _normalise(torch.rand(32, 3, 32, 32, generator=g))
    pairs = [PairConfig(("vision", "depth"), TensorPairs(("vision", "depth"), img, img.mean(1, keepdim=True)),
                        batch_size=16, replication=1.0),
             PairConfig(("vision", "thermal"), TensorPairs(("vision", "thermal"), img, img[:, :1]), batch_size=16,
                        replication=1.0)]  # fmt: skip
    cfg = TrainConfig(pairs=pairs, steps=4, warmup_steps=1, progress=False, run_dir=str(tmp_path / "r"),
                      cache_dir=str(tmp_path / "c"))  # fmt: skip
    res = train(cfg, model=small_model(("vision", "depth", "thermal")))
    assert res.step == 4 and all(np.isfinite(v["loss"]) for v in res.metrics.values())
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["pairs"]
    for p in saved:
        assert (p["augment"], p["erase"], p["randaug"], p["randaug_magnitude"], p["randaug_std"], p["jitter"],
                p["crop_scale"], p["views"]) == (True, 0.25, 2, 9.0, 0.5, 0.4, [0.08, 1.0], 4)  # fmt: skip
    assert len(list((tmp_path / "c").glob("vision-*"))) == 1  # both pairs share the anchor's cached views
