"""Depth and thermal loaders against hand computations: units, disparity, ranges, crops, normalisation, errors."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from bindkit.data import LoadError, load_depth, load_thermal
from bindkit.data import depth as depth_mod
from bindkit.data import thermal as thermal_mod

F, B = 518.857901, 0.075  # default focal (px) and baseline (m)


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def npy(a: np.ndarray, npz: bool = False) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, depth=a) if npz else np.save(buf, a)
    return buf.getvalue()


@pytest.fixture
def mm():
    """224 x 224 millimetres: missing, 0.5 m, 1 m, 9 m (beyond the 8 m clamp), 60 m (beyond 50 m)."""
    return np.tile(np.array([0, 500, 1000, 9000, 60000], np.uint16), (224, 45))[:, :224]


def disparity(metres):
    return np.float32(B * F / metres)


def test_millimetre_png_to_disparity(mm):
    x = load_depth([png(mm)])
    assert x.shape == (1, 1, 224, 224) and x.dtype == torch.float32
    row = x[0, 0, 0, :5].numpy()
    expected = [0, disparity(0.5), disparity(1.0), disparity(8.0), disparity(8.0)]  # clamped at 8 m
    np.testing.assert_allclose(row, expected, rtol=1e-6)


def test_presets_and_range_modes(mm):
    omni = load_depth([png(mm)], preset="omnivore")[0, 0, 0, :5].numpy()
    np.testing.assert_allclose(
        omni, [0, disparity(0.5), disparity(1.0), disparity(9.0), disparity(50.0)], rtol=1e-6
    )
    zero = load_depth([png(mm)], preset="imagebind_issue134", out_of_range="zero")[0, 0, 0, :5].numpy()
    np.testing.assert_allclose(zero, [0, disparity(0.5), disparity(1.0), 0, 0], rtol=1e-6)
    custom = load_depth([png(mm)], min_depth=0.8, out_of_range="zero", focal_length=[500.0], baseline=0.1)
    np.testing.assert_allclose(custom[0, 0, 0, :5].numpy(), [0, 0, 50.0, 0, 0], rtol=1e-6)


def test_sunrgbd_bit_rotation_npy_npz_and_arrays_agree(mm):
    stored = (((mm.astype(np.uint32) << 3) | (mm.astype(np.uint32) >> 13)) & 0xFFFF).astype(np.uint16)
    assert np.array_equal(depth_mod.sunrgbd_decode(stored), mm)
    ref = load_depth([png(mm)])
    metres = mm.astype(np.float64) / 1000
    others = [load_depth([png(stored)], encoding="sunrgbd"), load_depth([npy(metres)]),
              load_depth([npy(metres.astype(np.float32), npz=True)]), load_depth([metres]), load_depth([mm])]  # fmt: skip
    for x in others:
        torch.testing.assert_close(x, ref, rtol=1e-6, atol=0)
    d = np.full((224, 224), 7.5, np.float32)
    torch.testing.assert_close(load_depth([d], encoding="disparity"), torch.full((1, 1, 224, 224), 7.5))


def test_resize_and_centre_crop_geometry():
    cols = np.tile(np.arange(301, dtype=np.float32), (224, 1))  # short side already 224: crop only
    x = load_depth([cols], encoding="disparity")
    assert x[0, 0, 0, 0] == 38 and x[0, 0, 0, -1] == 38 + 223  # (301 - 224) / 2 = 38.5 rounds to 38
    flat = np.full((480, 640), 2.0, np.float32)  # constant maps stay constant through any resize
    y = load_depth([flat], size=64, interpolation="bicubic")
    torch.testing.assert_close(y, torch.full((1, 1, 64, 64), float(disparity(2.0))))


def test_normalisation_and_fit(mm):
    raw = load_depth([png(mm), png(mm[:, ::-1].copy())])
    stats = depth_mod.fit_normalization([raw[:1], raw[1:]])  # streamed in two chunks
    assert stats["mean"] == pytest.approx(raw.double().mean().item(), rel=1e-9)
    assert stats["std"] == pytest.approx(raw.double().std(unbiased=False).item(), rel=1e-9)
    normed = load_depth([png(mm)], **stats)
    torch.testing.assert_close(normed, (raw[:1] - stats["mean"]) / stats["std"])


def test_bad_depth_inputs_are_named(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    items = [
        np.ones((4, 4), np.float32),
        png(rgb),
        empty,
        np.zeros((2, 3, 4), np.float32),
        b"\x93NUMPYgarbage",
    ]
    with pytest.raises(LoadError) as e:
        load_depth(items)
    msg = str(e.value)
    assert (
        "4 of 5" in msg and "single-channel" in msg and "0 bytes" in msg and "(H, W)" in msg and "[4]" in msg
    )
    x, skipped = load_depth(items, errors="skip")
    assert x.shape == (1, 1, 224, 224) and [s.index for s in skipped] == [1, 2, 3, 4]
    with pytest.raises(LoadError, match="millimetre depth must be integers"):
        load_depth([np.ones((4, 4), np.float32)], encoding="mm")


def test_thermal_8_and_16_bit_are_scaled_to_unit_range():
    t8 = (np.arange(224 * 224) % 256).astype(np.uint8).reshape(224, 224)
    torch.testing.assert_close(
        load_thermal([png(t8)])[0, 0], torch.from_numpy(t8).float() / 255, rtol=0, atol=0
    )
    t16 = (np.arange(224 * 224) * 7 % 65536).astype(np.uint16).reshape(224, 224)
    x16 = load_thermal([png(t16)])
    torch.testing.assert_close(x16[0, 0], torch.from_numpy(t16.astype(np.float32)) / 65535, rtol=0, atol=1e-7)
    rgb = np.repeat(t8[:, :, None], 3, axis=2)  # LLVIP stores its infrared frames as 3 equal channels
    assert torch.equal(load_thermal([rgb.copy()[:, :, 0], png(rgb)])[1], load_thermal([t8])[0])


def test_thermal_resize_matches_pillow_recipe():
    rng = np.random.default_rng(0)
    t8 = rng.integers(0, 256, (120, 200), dtype=np.uint8)
    img = Image.fromarray(t8).resize((int(64 * 200 / 120), 64), Image.Resampling.BICUBIC)  # 106 x 64
    left = round((106 - 64) / 2)
    expected = np.asarray(img, dtype=np.float32)[:, left : left + 64] / 255
    x = load_thermal([t8], size=64, mean=0.5, std=0.25)
    torch.testing.assert_close(x[0, 0], (torch.from_numpy(expected) - 0.5) / 0.25)


def test_thermal_bad_inputs_and_fit():
    items = [
        np.zeros((8, 8, 3), np.uint8),
        np.full((8, 8), np.nan, np.float32),
        np.zeros((8, 8), np.int64),
        b"xx",
    ]
    with pytest.raises(LoadError) as e:
        load_thermal(items)
    assert "4 of 4" in str(e.value) and "NaN" in str(e.value) and "int64" in str(e.value)
    batch = load_thermal([np.full((16, 16), 51, np.uint8), np.full((16, 16), 204, np.uint8)], size=16)
    stats = thermal_mod.fit_normalization(batch)
    assert stats["mean"] == pytest.approx(0.5) and stats["std"] == pytest.approx(0.3)
