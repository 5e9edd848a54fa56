"""Video loader: clip timing, frame choice, scaling and crops against the official fixtures; bad input."""

import hashlib
import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from bindkit.data import LoadError, load_videos
from bindkit.data.video import (
    clip_frame_indices,
    clip_times,
    crop_offsets,
    decode_video,
    scale_clips,
    spatial_crops,
)

CASES = ["video.vi01_320x240_10fps_6s", "video.vi02_200x300_25fps_3p5s"]


@pytest.fixture(scope="module")
def pre(fixtures_dir):
    root = fixtures_dir / "preprocessing"
    cases = json.loads((root / "cases.json").read_text())["cases"]
    return root, cases, load_file(root / "outputs.safetensors")


def official(case, ref, name):
    """Rebuild the official `[1, 15, 3, 2, 224, 224]` output from the stored scaled clips and crop offsets."""
    scaled = ref[name + ".scaled"]
    crops = [
        scaled[k][:, :, y : y + 224, x : x + 224]
        for k, c in enumerate(case["clips"])
        for y, x in c["crop_offsets_y_x"]
    ]
    out = torch.stack(crops)[None].contiguous()
    assert hashlib.sha256(out.numpy().tobytes()).hexdigest() == case["official_output_sha256"]
    return out


@pytest.mark.parametrize("name", CASES)
def test_clip_times_and_frame_choice(pre, name):
    _, cases, _ = pre
    c = cases[name]
    n, fps = c["decoded"]["frames"], c["decoded"]["avg_fps"]
    for (start, end), clip in zip(clip_times(n / fps), c["clips"], strict=True):
        assert start == Fraction(clip["start_exact"]) and end == Fraction(clip["end_exact"])
        assert clip_frame_indices(n, fps, start, end) == clip["kept_frame_indices"]


@pytest.mark.parametrize("name", CASES)
def test_scaling_and_crops_from_stored_frames(pre, name):
    _, cases, ref = pre
    c = cases[name]
    scaled = scale_clips(ref[name + ".frames"])
    assert scaled.shape == ref[name + ".scaled"].shape
    assert (scaled - ref[name + ".scaled"]).abs().max() <= 1e-5
    assert [list(o) for o in crop_offsets(*scaled.shape[-2:])] == c["clips"][0]["crop_offsets_y_x"]
    assert (spatial_crops(scaled)[None] - official(c, ref, name)).abs().max() <= 1e-5


def test_full_mp4_path_bytes_and_frame_array(pre):
    root, cases, ref = pre
    paths = [root / cases[n]["inputs"][0] for n in CASES]
    x = load_videos(paths)
    assert x.shape == (2, 15, 3, 2, 224, 224)
    for i, name in enumerate(CASES):
        assert (x[i] - official(cases[name], ref, name)[0]).abs().max() <= 0.02
    assert torch.equal(load_videos([paths[1].read_bytes()])[0], x[1])
    with av.open(str(paths[0])) as f:
        frames = np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])
    assert torch.equal(load_videos([frames], fps=10)[0], x[0])


def test_small_size_and_one_crop(pre):
    root, cases, _ = pre
    x = load_videos([root / cases[CASES[0]]["inputs"][0]], clips=2, size=64, num_crops=1)
    assert x.shape == (1, 2, 3, 2, 64, 64)


def write_video(path, frames):
    with av.open(str(path), "w") as f:
        s = f.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        f.start_encoding()  # header even without frames
        for i in range(frames):
            img = np.full((48, 64, 3), 20 * i % 255, np.uint8)
            f.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        f.mux(s.encode())


def test_bad_videos_are_named(pre, tmp_path):
    root, cases, _ = pre
    good = root / cases[CASES[0]]["inputs"][0]
    short, no_frames, empty_mp4 = tmp_path / "short.mp4", tmp_path / "noframes.avi", tmp_path / "empty.mp4"
    write_video(short, 3)  # 0.3 s: every clip is [0, 2] and keeps frames 0 and 2
    write_video(no_frames, 0)  # AVI keeps a video stream with no frames
    write_video(empty_mp4, 0)  # MP4 drops the empty track
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(good.read_bytes()[:2000])
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    audio_only = root / "media" / "au01_wav16k_mono_5s.wav"
    items = [short, no_frames, empty_mp4, truncated, zero, audio_only, np.zeros((3, 8, 8), np.uint8)]
    with pytest.raises(LoadError) as e:
        load_videos(items, fps=10)
    msg = str(e.value)
    assert "6 of 7" in msg
    needles = [
        "[1]",
        "no frames",
        "[2]",
        "no video stream",
        "[3]",
        "[4]",
        "0 bytes",
        "[5]",
        "[6]",
        "[T, H, W, 3]",
    ]
    for needle in needles:
        assert needle in msg, needle
    x, skipped = load_videos(items, fps=10, errors="skip")
    assert x.shape == (1, 15, 3, 2, 224, 224) and [s.index for s in skipped] == [1, 2, 3, 4, 5, 6]


def test_seeking_gives_the_frames_of_a_full_decode(tmp_path):
    path = tmp_path / "long.mp4"
    with av.open(str(path), "w") as f:
        s = f.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.gop_size = 12
        for i in range(400):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, :, 0], img[8:16, i % 48 : i % 48 + 16] = i % 256, 255  # every frame differs
            f.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        f.mux(s.encode())

    def wanted(n, fps):
        return [i for a, b in clip_times(n / fps) for i in clip_frame_indices(n, fps, a, b)]

    in_order, n, fps = decode_video(path, wanted, seek=False)
    seeking, _, _ = decode_video(path, wanted, seek=True)
    assert (n, fps) == (400, 25.0) and sorted(in_order) == sorted(seeking) == sorted(set(wanted(n, fps)))
    for k in in_order:
        assert np.array_equal(in_order[k], seeking[k]), k


def _indexed_frames(n: int) -> np.ndarray:
    """uint8 [n, 8, 8, 3] frames whose every pixel holds 20 * the frame's index (to read frame choice back)."""
    return np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None] * 20, 8, 1).repeat(8, 2).repeat(3, 3)


def _frame_ids(x: torch.Tensor) -> list[list[int]]:
    """The frame index of each (clip, frame) of a loader output [1, S, 3, T, 8, 8], undoing CLIP normalisation."""
    red = x[0, :, 0, :, 0, 0] * 0.26862954 + 0.48145466  # CLIP mean/std of channel 0
    return (red * 255 / 20).round().long().tolist()


def test_last_seconds_spreads_clips_over_the_end():
    # 8 frames at 4 fps (2 s); two 0.5 s clips over the last second: [1, 1.5] -> frames 4, 5; [1.5, 2] -> 6, 7
    frames = _indexed_frames(8)
    x = load_videos([frames], clips=2, clip_duration=0.5, size=8, num_crops=1, fps=4.0, last_seconds=1.0)
    assert _frame_ids(x) == [[4, 5], [6, 7]]
    # the official rule (None, or a window as long as the video) spreads them over the whole video: 0, 1 and 6, 7
    for last in (None, 2.0, 5.0):
        x = load_videos([frames], clips=2, clip_duration=0.5, size=8, num_crops=1, fps=4.0, last_seconds=last)
        assert _frame_ids(x) == [[0, 1], [6, 7]]
    with pytest.raises(ValueError, match="last_seconds"):
        load_videos([frames], clips=2, clip_duration=0.5, size=8, num_crops=1, fps=4.0, last_seconds=0.0)
