"""Input forms of the loaders checked against independent computations: truncated audio, PIL depth/thermal,
depth/thermal/IMU from file paths, video from a file object, and audio folders holding video containers."""

import io
import json

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import DataLoader

from bindkit.data import (
    LoadError,
    StreamingDataset,
    collate,
    list_files,
    load_audio,
    load_depth,
    load_imu,
    load_thermal,
    load_videos,
)
from bindkit.data import audio as audio_mod
from bindkit.data.audio import decode_audio
from bindkit.modalities import spec

F, B = 518.857901, 0.075  # default focal (px) and baseline (m) of load_depth
FORMATS = {"flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}


# ---------------------------------------------------------------------------------------------------- audio
@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    """4 s of noise at 16 kHz as wav, flac, ogg and mp3 (libsndfile-written), and each compressed one cut in half."""
    folder = tmp_path_factory.mktemp("audio")
    x = (0.1 * np.random.default_rng(0).standard_normal(4 * 16000)).astype(np.float32)
    files = {"wav": folder / "full.wav"}
    sf.write(files["wav"], x, 16000, subtype="PCM_16")
    for ext, (fmt, subtype) in FORMATS.items():
        full, cut = folder / f"full.{ext}", folder / f"cut.{ext}"
        sf.write(full, x, 16000, format=fmt, subtype=subtype)
        data = full.read_bytes()
        cut.write_bytes(data[: len(data) // 2])
        files[ext], files[f"cut_{ext}"] = full, cut
    return files


@pytest.mark.parametrize("ext", list(FORMATS))
def test_truncated_audio_is_a_clear_error_naming_the_item(audio_files, ext):
    assert decode_audio(audio_files[ext])[0].shape[1] == 4 * 16000  # the whole file decodes to every sample
    with pytest.raises(LoadError) as e:
        load_audio([audio_files["wav"], audio_files[f"cut_{ext}"]])
    assert [f.index for f in e.value.failures] == [1] and "truncated" in e.value.failures[0].reason
    assert f"[1] '{audio_files[f'cut_{ext}']}'" in str(e.value)


def test_truncated_mp3_states_declared_and_decoded_frames(audio_files):
    with pytest.raises(LoadError, match=r"truncated file: the MP3 header says 64000 frames, decoded \d+"):
        load_audio([audio_files["cut_mp3"]])
    with open(audio_files["cut_mp3"], "rb") as f, pytest.raises(LoadError, match="header says 64000 frames"):
        load_audio([audio_files["cut_mp3"].read_bytes(), f])  # as bytes and as a file object


def test_truncated_mp3_is_caught_when_ffmpeg_decodes_it(audio_files, monkeypatch):
    via_sf = decode_audio(audio_files["mp3"])[0]
    monkeypatch.setattr(audio_mod, "_decode_sf", lambda src: "a libsndfile without MP3 support")
    wave, rate = decode_audio(audio_files["mp3"])
    assert rate == 16000 and wave.shape == via_sf.shape  # FFmpeg's gapless length is libsndfile's
    assert (wave - via_sf).abs().max() < 1e-3  # two MP3 decoders, one signal
    with pytest.raises(LoadError, match=r"the MP3 header says 64000 frames, decoded \d+"):
        load_audio([audio_files["cut_mp3"]])


def test_skip_returns_the_good_audio_and_lists_every_truncated_file(audio_files):
    f = audio_files
    items = [f["wav"], f["cut_flac"], f["mp3"], f["cut_mp3"], f["cut_ogg"], f["ogg"], f["flac"]]
    result = load_audio(items, errors="skip")
    assert [(s.index, s.item) for s in result.skipped] == [(i, repr(str(items[i]))) for i in (1, 3, 4)]
    assert all("truncated" in s.reason for s in result.skipped)
    assert torch.equal(result.tensor, load_audio([f["wav"], f["mp3"], f["ogg"], f["flac"]]))


def test_mp3_without_a_length_header_is_read_to_its_end():
    t = np.arange(6 * 16000) / 16000
    x = np.where(t < 1.5, 0.0, 0.3 * np.random.default_rng(1).standard_normal(t.size)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="MP3", subtype="MPEG_LAYER_III")  # VBR: quiet start, small first frames
    data = buf.getvalue()
    at = max(data.find(b"Xing"), data.find(b"Info"))
    bare = data[:at] + b"XXXX" + data[at + 4 :]  # no length header: libsndfile estimates ~2.4 s from frame 1
    assert sf.info(io.BytesIO(bare)).frames < 3 * 16000
    wave = decode_audio(bare)[0]
    assert 6 * 16000 <= wave.shape[1] <= 6 * 16000 + 3 * 1152  # all 6 s (plus ungapped encoder delay)
    assert torch.allclose(wave[0, -16000:].std(), torch.tensor(0.3), rtol=0.2)  # the loud end is there


# ---------------------------------------------------------------------------------------------------- depth
def save_png(path, a):
    Image.fromarray(a).save(path)
    return path


@pytest.fixture
def mm():
    """Depth in millimetres, 48 x 64, with holes (0) and values beyond the 8 m clamp."""
    a = np.random.default_rng(2).integers(300, 9500, (48, 64), dtype=np.uint16)
    a[5:9, 10:20] = 0
    return a


def test_depth_from_png_and_npy_paths_equals_the_arrays(tmp_path, mm):
    png, npy, npz = tmp_path / "d.png", tmp_path / "d.npy", tmp_path / "d.npz"
    save_png(png, mm)
    metres = mm.astype(np.float32) / np.float32(1000)
    np.save(npy, metres)
    np.savez(npz, depth=metres)
    x = load_depth([png, npy, npz], size=32)
    assert torch.equal(x[0], load_depth([mm], size=32)[0])
    assert torch.equal(x[1], load_depth([metres], size=32)[0]) and torch.equal(x[2], x[1])
    torch.testing.assert_close(x[0], x[1], rtol=1e-6, atol=0)  # mm x 0.001 vs mm / 1000: float rounding only


def test_depth_at_full_size_matches_a_numpy_rederivation(tmp_path, mm):
    x = load_depth([save_png(tmp_path / "d.png", mm)], size=48)[0, 0].numpy()  # (48, 64) -> crop cols 8..56
    d = mm[:, 8:56].astype(np.float64) / 1000
    expected = np.zeros_like(d)
    expected[d > 0] = B * F / np.minimum(d[d > 0], 8.0)  # holes stay 0, beyond 8 m clamps
    np.testing.assert_allclose(x, expected, rtol=1e-6)


def test_depth_from_pil_images_equals_the_png_path(tmp_path, mm):
    png = save_png(tmp_path / "d.png", mm)
    opened = Image.open(png)
    assert opened.mode == "I;16"
    metres = mm.astype(np.float32) / 1000
    items = [png, opened, Image.fromarray(mm.astype(np.int32)), Image.fromarray(metres)]
    x = load_depth(items, size=32)  # integer modes: stored units (mm); mode F: metres
    assert Image.fromarray(mm.astype(np.int32)).mode == "I" and Image.fromarray(metres).mode == "F"
    assert torch.equal(x[1], x[0]) and torch.equal(x[2], x[0])
    assert torch.equal(x[3], load_depth([metres], size=32)[0])
    grey = np.full((48, 64), 200, np.uint8)  # mode L: stored units, 0.2 m
    assert torch.equal(load_depth([Image.fromarray(grey)], size=32), load_depth([grey], size=32))


def test_depth_rejects_multichannel_pil_images_clearly(mm):
    with pytest.raises(LoadError, match=r"\[1\] <PIL RGB 64x48>: depth images must be single-channel"):
        load_depth([mm, Image.new("RGB", (64, 48))])


# ---------------------------------------------------------------------------------------------------- thermal
@pytest.fixture
def thermal_maps():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (40, 56), dtype=np.uint8), rng.integers(0, 65536, (40, 56), dtype=np.uint16)


def test_thermal_from_8_and_16_bit_png_paths(tmp_path, thermal_maps):
    t8, t16 = thermal_maps
    paths = [save_png(tmp_path / "t8.png", t8), save_png(tmp_path / "t16.png", t16)]
    x = load_thermal(paths, size=40)
    assert torch.equal(x, load_thermal([t8, t16], size=40))
    crop = slice(8, 48)  # (40, 56) at size 40: no resize, centre crop of columns 8..48
    torch.testing.assert_close(
        x[0, 0], torch.from_numpy(t8[:, crop].astype(np.float32) / 255), rtol=0, atol=0
    )
    torch.testing.assert_close(x[1, 0], torch.from_numpy(t16[:, crop] / np.float32(65535)), rtol=0, atol=1e-7)


def test_thermal_from_pil_images(tmp_path, thermal_maps):
    t8, t16 = thermal_maps
    rgb = Image.fromarray(np.repeat(t8[:, :, None], 3, axis=2))  # equal channels, as LLVIP's infrared frames
    f = t16.astype(np.float32) / 65535
    items = [Image.fromarray(t8), Image.open(save_png(tmp_path / "t16.png", t16)), rgb, Image.fromarray(f)]
    x = load_thermal(items, size=32)
    reference = load_thermal([t8, t16, t8, f], size=32)
    assert torch.equal(x, reference)


def test_thermal_skip_returns_the_good_ones(tmp_path, thermal_maps):
    t8, t16 = thermal_maps
    good = save_png(tmp_path / "t8.png", t8)
    items = [
        good,
        tmp_path / "missing.png",
        Image.fromarray(t16),
        b"not an image",
        np.zeros((4, 4, 3), np.uint8),
    ]
    result = load_thermal(items, size=32, errors="skip")
    assert [s.index for s in result.skipped] == [1, 3, 4]
    assert "file not found" in result.skipped[0].reason and "(H, W)" in result.skipped[2].reason
    assert torch.equal(result.tensor, load_thermal([t8, t16], size=32))
    assert result.kept(len(items)) == [0, 2]


# ---------------------------------------------------------------------------------------------------- imu
SLOPES = np.array([1.0, -2.0, 3.0, 0.5, -0.25, 4.0])


def ramp_expected(length=2000, duration=5.0):
    """Linear ramps are exact under linear interpolation: value_c(t) = c + SLOPES[c] * t on the output grid."""
    grid = np.arange(length) * (duration / length)
    return (np.arange(6)[:, None] + SLOPES[:, None] * grid).astype(np.float32)


def test_imu_from_npz_csv_and_npy_paths(tmp_path):
    rng = np.random.default_rng(4)
    t = np.cumsum(rng.uniform(0.004, 0.006, 1300))  # irregular, about 200 Hz: the times must be used
    t -= t[0]
    x = np.arange(6) + SLOPES * t[:, None]
    np.savez(tmp_path / "imu.npz", imu=x, t=t)
    np.savez(tmp_path / "ct.npz", imu=x.T.astype(np.float32), time=t)
    header = "time,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"
    np.savetxt(tmp_path / "imu.csv", np.column_stack([t, x]), delimiter=",", header=header, comments="")
    y = load_imu([tmp_path / "imu.npz", tmp_path / "ct.npz", tmp_path / "imu.csv"])
    for row in y:
        np.testing.assert_allclose(row.numpy(), ramp_expected(), rtol=1e-6, atol=1e-5)
    regular = np.arange(6) + SLOPES * (np.arange(1200) / 200.0)[:, None]
    np.save(tmp_path / "imu.npy", regular)
    np.savetxt(tmp_path / "bare.csv", regular, delimiter=",")  # no header, no time: 6 columns
    z = load_imu([tmp_path / "imu.npy", tmp_path / "bare.csv", regular], sample_rate=200.0)
    assert torch.equal(z[0], z[2]) and torch.equal(z[1], z[2])
    np.testing.assert_allclose(z[2].numpy(), ramp_expected(), rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------------------------------------------- video
def test_video_from_a_file_object(fixtures_dir):
    root = fixtures_dir / "preprocessing"
    case = json.loads((root / "cases.json").read_text())["cases"]["video.vi02_200x300_25fps_3p5s"]
    path = root / case["inputs"][0]
    with open(path, "rb") as f:
        x = load_videos([f], size=64)
    assert torch.equal(x[0], load_videos([path], size=64)[0])
    with av.open(str(path)) as c:
        frames = np.stack([fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)])
    assert torch.equal(x[0], load_videos([frames], fps=case["decoded"]["avg_fps"], size=64)[0])


# ---------------------------------------------------------------------------------------------------- folders
def write_av(path, audio=True, seconds=2.5):
    """A small video file (mpeg4, 10 fps) with, optionally, a 440 Hz AAC track at 48 kHz."""
    rate, tone = 48000, np.sin(2 * np.pi * 440 * np.arange(int(seconds * 48000)) / 48000)
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=rate) if audio else None
        if a is not None:
            a.layout = "mono"
        for i in range(int(seconds * 10)):
            c.mux(v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i, np.uint8), format="rgb24")))
        c.mux(v.encode())
        for i in range(0, tone.size if a is not None else 0, 1024):
            chunk = np.ascontiguousarray(0.5 * tone[None, i : i + 1024], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = rate
            c.mux(a.encode(frame))
        if a is not None:
            c.mux(a.encode(None))


def test_audio_folders_pick_up_video_containers(tmp_path):
    sf.write(tmp_path / "a.wav", 0.1 * np.random.default_rng(5).standard_normal(32000), 16000)
    write_av(tmp_path / "b.mp4")
    write_av(tmp_path / "c.mkv")
    write_av(tmp_path / "d.mov", audio=False)
    (tmp_path / "notes.txt").write_text("neither")
    files = list_files(tmp_path, "audio")
    assert [p.name for p in files] == ["a.wav", "b.mp4", "c.mkv", "d.mov"]
    assert {".mp4", ".mkv", ".webm", ".mov"} <= set(spec("audio").extensions)
    batches = list(
        DataLoader(StreamingDataset(tmp_path, "audio", errors="skip"), batch_size=4, collate_fn=collate)
    )
    assert [b.keys for b in batches] == [[str(p) for p in files[:3]]]
    assert batches[0].skipped == [(str(files[3]), "no audio stream in the file")]
    assert torch.equal(batches[0].inputs, load_audio(files[:3]))


def test_video_folders_are_unaffected(tmp_path):
    write_av(tmp_path / "b.mp4")
    sf.write(tmp_path / "a.wav", np.zeros(16000), 16000)
    sf.write(tmp_path / "c.flac", np.zeros(16000), 16000)
    assert set(spec("video").extensions) == {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}
    assert [p.name for p in list_files(tmp_path, "video")] == ["b.mp4"]
