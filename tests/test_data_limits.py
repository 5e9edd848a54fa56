"""Resource bounds (bindkit.data.limits): caps read from headers before allocation, overridable by the user; regular
files only; embed's link policy and per-file detection failures."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

import bindkit.data as data
from bindkit.data import Limits, LoadError, get_limits, limits_scope, set_limits
from bindkit.store.collect import collect
from hostile_corpus import npy_header_only, npz_bomb, png_header, wav_header


def _reason(result) -> str:
    assert len(result.skipped) == 1, result
    return result.skipped[0].reason


def test_limits_are_overridable_and_restored():
    before = get_limits()
    img = np.zeros((40, 50, 3), np.uint8)
    with limits_scope(max_pixels=40 * 50 - 1) as lim:  # one pixel under the picture: refused, naming the cap
        assert lim.max_pixels == 1999 and get_limits() is lim
        assert "2000 pixels, over the limit of 1999" in _reason(data.load_images([_png(img)], errors="skip"))
    assert get_limits() is before
    old = set_limits(Limits(max_pixels=10**12))
    try:
        assert data.load_images([_png(img)]).shape == (1, 3, 224, 224)
    finally:
        set_limits(old)
    assert get_limits() == Limits()  # the documented defaults


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def test_extreme_aspect_ratio_is_refused_before_the_resize():
    png = png_header(60000, 1, rows=1)  # 60000 pixels, but 224 x 13.4M once the short side is 224
    for load in (data.load_images, data.load_thermal, data.load_depth):
        reason = _reason(load([png], errors="skip"))
        assert "224x13440000" in reason and "Limits.max_pixels" in reason, reason


def test_pillow_bomb_check_is_an_error_not_a_warning(recwarn):
    reason = _reason(data.load_images([png_header(12000, 12000)], errors="skip"))  # Pillow would only warn
    assert "bomb" in reason or "limit" in reason
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


def test_array_caps_come_from_headers():
    bomb = npz_bomb((30000, 30000))  # 3.6 GB of float32 zeros in ~3.5 MB
    assert len(bomb) < 4 << 20
    reason = _reason(data.load_depth([bomb], errors="skip"))
    assert "(30000, 30000) float32 is 3600000000 bytes" in reason and "max_array_bytes" in reason
    assert "max_array_bytes" in _reason(data.load_imu([bomb], sample_rate=100.0, errors="skip"))
    assert "rows" in _reason(data.load_imu([npy_header_only((10_000_000, 6), "<f4")], sample_rate=1.0,
                                           errors="skip"))  # fmt: skip
    pickled = io.BytesIO()
    np.save(pickled, np.array([{}], dtype=object), allow_pickle=True)
    assert "pickle" in _reason(data.load_depth([pickled.getvalue()], errors="skip"))
    with limits_scope(max_array_bytes=40 * 56 * 4 - 1):
        ok = io.BytesIO()
        np.save(ok, np.ones((40, 56), np.float32))
        assert "8960 bytes once loaded" in _reason(data.load_depth([ok.getvalue()], errors="skip"))


def test_audio_caps_come_from_headers():
    assert "sample rate 1 Hz" in _reason(data.load_audio([wav_header(1, data=bytes(64000))], errors="skip"))
    one_second = wav_header(16000, data=bytes(32000))
    assert data.load_audio([one_second]).shape[0] == 1
    with limits_scope(max_audio_seconds=0.5):
        assert "1 s long" in _reason(data.load_audio([one_second], errors="skip"))
    with limits_scope(max_audio_samples=15999):
        assert "max_audio_samples" in _reason(data.load_audio([one_second], errors="skip"))
    cut = wav_header(16000, data_len=96000, data=bytes(32000))  # the header says 3 s, 1 s is there
    assert "truncated" in _reason(data.load_audio([cut], errors="skip"))


def test_video_frame_cap(tmp_path):
    from hostile_corpus import _video_bytes

    clip = _video_bytes("mp4", "mpeg4", np.random.default_rng(0))  # 48 x 32 frames
    with limits_scope(max_pixels=48 * 32 - 1):
        assert "video frame is 48x32" in _reason(data.load_videos([clip], errors="skip"))
    assert data.load_videos([clip]).shape[0] == 1


def test_garbage_values_refused():
    for a, word in ((np.full((8, 8), np.nan), "finite"), (np.ones((8, 8), complex), "complex"),
                    (np.ones((8, 8), bool), "bool")):  # fmt: skip
        assert word in _reason(data.load_depth([a], errors="skip"))
        assert word in _reason(data.load_thermal([a], errors="skip"))
    t = np.arange(100) / 100.0
    x = np.random.default_rng(0).normal(size=(100, 6))
    huge = "t,ax,ay,az,gx,gy,gz\n" + "".join(
        f"{1e300 + ti * 1e290},{','.join(map(str, r))}\n" for ti, r in zip(t, x, strict=True)
    )
    assert "cannot be resampled" in _reason(data.load_imu([huge.encode()], errors="skip"))
    assert "finite" in _reason(data.load_imu([np.full((100, 6), np.nan)], sample_rate=100.0, errors="skip"))


@pytest.mark.parametrize("make", ["fifo", "dev", "loop"])
def test_special_files_get_their_real_reason(tmp_path, make):
    p = tmp_path / "x.png"
    if make == "fifo":
        os.mkfifo(p)
    elif make == "dev":
        p = "/dev/zero"
    else:
        p.symlink_to(p)
    word = {"fifo": "FIFO", "dev": "device", "loop": "loop"}[make]
    for load in (data.load_images, data.load_depth, data.load_thermal, data.load_imu, data.load_videos,
                 data.load_audio):  # fmt: skip
        with pytest.raises(LoadError, match=word):
            load([str(p)])


def test_collect_link_policy_and_unreadable_files(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "image").mkdir(parents=True)
    outside.mkdir()
    Image.new("RGB", (8, 8)).save(outside / "secret.png")
    Image.new("RGB", (8, 8)).save(root / "image" / "ok.png")
    (root / "image" / "out.png").symlink_to(outside / "secret.png")
    (root / "image" / "in.png").symlink_to(root / "image" / "ok.png")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "again").symlink_to(root, target_is_directory=True)  # a loop
    os.mkfifo(root / "image" / "pipe.png")
    (root / "misc").mkdir()
    (root / "misc" / "bomb.png").write_bytes(png_header(100000, 100000))
    (root / "misc" / "empty.npy").write_bytes(b"")

    entries, skipped, _, failed = collect([root])
    assert sorted(os.path.basename(e.path) for e in entries) == ["in.png", "ok.png"]
    why = {os.path.relpath(p, root): r for p, r in skipped}
    assert "not followed (pass --follow-links" in why["image/out.png"] and "not followed" in why["linked"]
    assert "loop" in why["again"] and "FIFO" in why["image/pipe.png"]
    bad = {os.path.relpath(p, root): r for p, r in failed}
    assert set(bad) == {"misc/bomb.png", "misc/empty.npy"} and "bomb" in bad["misc/bomb.png"]

    entries, skipped, _, _ = collect([root], follow_links=True)
    names = sorted(os.path.relpath(e.path, root) for e in entries)
    assert names == ["image/in.png", "image/ok.png", "image/out.png", "linked/secret.png"]
    assert "loop" in dict((os.path.relpath(p, root), r) for p, r in skipped)["again"]
