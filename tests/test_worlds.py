"""The digits world: determinism, pairing across modalities, splits, shapes, the shipped speech pool, files."""

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image, ImageFilter

from bindkit.data import load_depth, load_imu
from bindkit.worlds import DigitsWorld
from bindkit.worlds.captions import WORDS
from bindkit.worlds.files import to_files
from bindkit.worlds.inputs import CLIP_MEAN, CLIP_STD, image_tensor, imu_tensor, to_model_inputs, video_tensor
from bindkit.worlds.relief import BASELINE_M, FOCAL_PX
from bindkit.worlds.render import rasterize
from bindkit.worlds.speech import load_manifest, load_pool, pool_dir

N = 20


@pytest.fixture(scope="module")
def world() -> DigitsWorld:
    return DigitsWorld(seed=0)


@pytest.fixture(scope="module")
def batch(world):
    return world.sample("train", N, seed=0)


@pytest.fixture(scope="module")
def clean():
    """Instances with noise-free IMU (their other modalities are as usual)."""
    return DigitsWorld(seed=0, imu_noise=0.0).sample("test", N, seed=5, modalities=("image", "imu"))


# ---------------------------------------------------------------- helpers (independent re-derivations)


def inkness(image: np.ndarray) -> np.ndarray:
    """How far each pixel is from the local background (median over 9x9), summed over RGB: (H, W)."""
    bg = np.asarray(Image.fromarray(image).filter(ImageFilter.MedianFilter(9)), np.float64)
    return np.abs(image.astype(np.float64) - bg).sum(-1)


def best_shift_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Max over translations of the normalised cross-correlation of two zero-mean maps (zero padded, no wrap)."""
    a, b = a - a.mean(), b - b.mean()
    size = [2 * s for s in a.shape]
    xc = np.fft.irfft2(np.fft.rfft2(a, size) * np.conj(np.fft.rfft2(b, size)), size)
    return float(xc.max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def diagonal_wins(score: np.ndarray) -> int:
    """How many rows have their largest score on the diagonal."""
    return int((score.argmax(1) == np.arange(len(score))).sum())


def rotation(v: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation matrix of a rotation vector."""
    th = np.linalg.norm(v)
    if th < 1e-15:
        return np.eye(3)
    k = v / th
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * kx @ kx


def integrate_imu(imu: np.ndarray, rate: float, elevation: float, azimuth: float) -> np.ndarray:
    """Dead-reckon the pen tip (T, 3) in metres from a noise-free IMU, starting at rest at the origin.

    Initial attitude from the documented grip convention R0 = Rz(azimuth) Ry(90 - elevation).
    """
    e, a = np.radians(elevation), np.radians(azimuth)
    r = rotation(np.array([0, 0, a])) @ rotation(np.array([0, np.pi / 2 - e, 0]))
    dt, n = 1 / rate, imu.shape[1]
    p, prev = np.zeros((n, 3)), np.zeros(3)
    for k in range(n - 1):
        acc = r @ imu[:3, k].astype(np.float64) - np.array([0, 0, 9.81])
        p[k + 1], prev = 2 * p[k] - prev + acc * dt * dt, p[k]
        r = r @ rotation(imu[3:, k].astype(np.float64) * dt)
    return p


def splat(points_px: np.ndarray, size: int, radius: float = 1.5) -> np.ndarray:
    """Rasterise points (M, 2) as discs into a float mask (size, size)."""
    g = np.arange(size) + 0.5
    d2 = (g[None, None, :] - points_px[:, 0, None, None]) ** 2 + (
        g[None, :, None] - points_px[:, 1, None, None]
    ) ** 2
    return (d2 <= radius**2).any(0).astype(np.float64)


# ---------------------------------------------------------------- determinism, shapes, splits


def test_same_seed_same_arrays_and_different_seed_different(world, batch):
    again = DigitsWorld(seed=0).sample("train", N, seed=0)
    for name in ("images", "videos", "audio", "depth", "thermal", "imu"):
        np.testing.assert_array_equal(getattr(batch, name), getattr(again, name), err_msg=name)
    assert batch.captions == again.captions and batch.voice == again.voice
    other = world.sample("train", N, seed=1)
    for name in ("images", "videos", "audio", "depth", "thermal", "imu"):
        assert not np.array_equal(getattr(batch, name), getattr(other, name)), name
    reseeded = DigitsWorld(seed=1).sample("train", 4, seed=0, modalities=("image",))
    assert not np.array_equal(reseeded.images, batch.images[:4])


def test_instance_does_not_depend_on_batch_size_or_other_modalities(world, batch):
    few = world.sample("train", 5, seed=0, modalities=("image", "imu"))
    np.testing.assert_array_equal(few.images, batch.images[:5])
    np.testing.assert_array_equal(few.imu, batch.imu[:5])


def test_shapes_dtypes_and_ranges(batch):
    assert batch.images.shape == (N, 64, 64, 3) and batch.images.dtype == np.uint8
    assert batch.videos.shape == (N, 8, 64, 64, 3) and batch.videos.dtype == np.uint8
    assert batch.audio.shape == (N, 32000) and batch.audio.dtype == np.float32 and batch.sample_rate == 16000
    assert np.abs(batch.audio).max() <= 1.0
    assert batch.depth.shape == (N, 64, 64) and batch.depth.dtype == np.float32
    assert batch.depth.min() > BASELINE_M * FOCAL_PX / 3.0 and batch.depth.max() < BASELINE_M * FOCAL_PX / 0.3
    assert batch.thermal.shape == (N, 64, 64) and batch.thermal.dtype == np.float32
    assert 0.0 <= batch.thermal.min() and batch.thermal.max() <= 1.0
    assert batch.imu.shape == (N, 6, 400) and batch.imu.dtype == np.float32 and np.isfinite(batch.imu).all()
    np.testing.assert_array_equal(batch.digit, np.arange(N) % 10)
    assert len(batch.captions) == N and len(set(batch.ids)) == N


def test_other_sizes():
    w = DigitsWorld(seed=2, image_size=224, video_frames=4, imu_length=2000, audio_seconds=1.5)
    x = w.sample("test", 2)
    assert x.images.shape == (2, 224, 224, 3) and x.videos.shape == (2, 4, 224, 224, 3)
    assert x.depth.shape == x.thermal.shape == (2, 224, 224)
    assert x.imu.shape == (2, 6, 2000) and x.imu_rate == 1000.0 and x.audio.shape == (2, 24000)


def test_gravity_at_rest(clean):
    """Before writing starts the pen is still: the accelerometer reads 1 g and the gyroscope zero."""
    first = clean.imu[:, :, 0]
    np.testing.assert_allclose(np.linalg.norm(first[:, :3], axis=1), 9.81, rtol=1e-5)
    np.testing.assert_allclose(first[:, 3:], 0.0, atol=1e-6)
    # at rest the pen axis (body z) makes the grip's elevation with the horizontal: a_z = g sin(elevation)
    np.testing.assert_allclose(first[:, 2], 9.81 * np.sin(np.radians(clean.pen_elevation)), rtol=1e-4)


def test_splits_use_disjoint_writers_voices_and_streams(world):
    assert not set(world.writers("train")) & set(world.writers("test"))
    assert not set(world.voices("train")) & set(world.voices("test"))
    variants = {s: {v.split("+")[1] for v in world.voices(s)} for s in ("train", "test")}
    assert not variants["train"] & variants["test"]  # held-out timbres, not only held-out accent pairs
    train, test = world.sample("train", 40, modalities=()), world.sample("test", 40, modalities=())
    assert set(train.writer) <= set(world.writers("train")) and set(test.writer) <= set(world.writers("test"))
    assert set(train.voice) <= set(world.voices("train")) and set(test.voice) <= set(world.voices("test"))
    assert not set(train.ids) & set(test.ids)
    assert not {tuple(e) for e in train.entropy} & {tuple(e) for e in test.entropy}


def test_bad_input_is_named():
    w = DigitsWorld()
    with pytest.raises(ValueError, match="split must be one of .*'val'"):
        w.sample("val", 3)
    with pytest.raises(ValueError, match="n must be a positive int"):
        w.sample("train", 0)
    with pytest.raises(ValueError, match=r"unknown modalities \['smell'\]"):
        w.sample("train", 2, modalities=("image", "smell"))
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        DigitsWorld(seed=-1)
    x = w.sample("train", 2, modalities=())
    with pytest.raises(ValueError, match="no rendered modality"):
        to_files(x, "/nonexistent/never")
    with pytest.raises(
        ValueError, match=r"laid out by a world with \(seed, image_size, window_seconds\)=\(0, 64, 2.0\)"
    ):
        DigitsWorld(image_size=32).render(x, ("image",))


# ---------------------------------------------------------------- pairing: one written instance, many modalities


def test_rasterize_matches_brute_force_segment_distances():
    rng = np.random.default_rng(0)
    n, s, size = 3, 30, 48
    pts = np.cumsum(rng.normal(0, 2, (n, s + 1, 2)), 1) + size / 2
    pen = rng.random((n, s)) > 0.15
    state = np.sort(rng.integers(0, 3, (n, s)), 1)
    out = rasterize(pts, pen, state, 3, size, reach=4.0)
    g = np.arange(size) + 0.5
    p = np.stack(np.meshgrid(g, g, indexing="xy"), -1)  # (H, W, 2) as (x, y)
    for i in range(n):
        for k in range(3):
            ref = np.full((size, size), np.inf)
            for j in np.nonzero(pen[i] & (state[i] <= k))[0]:
                a, d = pts[i, j], pts[i, j + 1] - pts[i, j]
                t = np.clip(((p - a) @ d) / (d @ d), 0, 1)
                ref = np.minimum(ref, ((p - a - t[..., None] * d) ** 2).sum(-1))
            near = ref < 16
            np.testing.assert_allclose(out[i, k][near], ref[near], atol=1e-3)
            assert (out[i, k][~near] >= 16 - 1e-3).all()


def test_imu_dead_reckoning_retraces_the_image(clean):
    """Integrating the noise-free IMU gives a pen path whose pen-down part matches that instance's photo."""
    score = np.zeros((N, N))
    maps = [inkness(im) for im in clean.images]
    for i in range(N):
        path = integrate_imu(clean.imu[i], clean.imu_rate, clean.pen_elevation[i], clean.pen_azimuth[i])
        down = path[:, 2] < 1e-4  # the pen lifts 5 mm between strokes
        px = np.stack([path[down, 0], -path[down, 1]], 1) / clean.metres_per_px[i]
        mask = splat(px - px.min(0) + 2, 64)
        score[i] = [best_shift_corr(mask, m) for m in maps]
    assert diagonal_wins(score) == N
    assert np.diag(score).mean() > 0.6


def test_thermal_trace_and_image_ink_share_the_path(batch):
    heat = [t - np.median(t) for t in batch.thermal]
    ink = [inkness(im) for im in batch.images]
    corr = np.array([[np.corrcoef(h.ravel(), k.ravel())[0, 1] for k in ink] for h in heat])
    assert diagonal_wins(corr) == N
    assert np.diag(corr).mean() > 0.5 and np.median(corr[~np.eye(N, dtype=bool)]) < 0.2


def path_mask(inst, i: int) -> np.ndarray:
    """The pen-down path of instance i as drawn with its pen width, rasterised by brute force: (H, W)."""
    g, size = inst.geometry, inst.image_size
    pts, strokes = g.dense[i][g.sparse_index[i]], g.stroke[i][g.sparse_index[i]]
    c = np.arange(size) + 0.5
    p = np.stack(np.meshgrid(c, c, indexing="xy"), -1)
    d2 = np.full((size, size), np.inf)
    for j in np.nonzero(strokes[1:] == strokes[:-1])[0]:
        a, d = pts[j], pts[j + 1] - pts[j]
        t = np.clip(((p - a) @ d) / max(d @ d, 1e-9), 0, 1)
        d2 = np.minimum(d2, ((p - a - t[..., None] * d) ** 2).sum(-1))
    return (np.sqrt(d2) <= g.width[i] / 2).astype(np.float64)


def test_image_ink_is_the_instance_path(batch):
    paths = [path_mask(batch, i) for i in range(N)]
    inks = [inkness(im) for im in batch.images]
    corr = np.array([[np.corrcoef(k.ravel(), p.ravel())[0, 1] for p in paths] for k in inks])
    assert diagonal_wins(corr) == N and np.diag(corr).mean() > 0.8


def test_depth_relief_is_the_written_path(batch):
    """Remove the plate (disparity of a plane is affine in pixel coordinates); the residual is the path, seen
    through the plate's perspective (so matched up to a shift, and same-digit paths of one writer look alike)."""
    g = np.arange(64) + 0.5
    u, v = np.meshgrid(g, g)
    a = np.stack([u.ravel(), v.ravel(), np.ones(64 * 64)], 1)
    relief = []
    for d in batch.depth:
        coef, *_ = np.linalg.lstsq(a, d.ravel().astype(np.float64), rcond=None)
        relief.append(np.abs(d - (a @ coef).reshape(64, 64)))
    paths = [path_mask(batch, i) for i in range(N)]
    score = np.array([[best_shift_corr(r, p) for p in paths] for r in relief])
    other_digit = np.where(batch.digit[None] != batch.digit[:, None], score, -1.0)
    assert (np.diag(score) > other_digit.max(1)).all() and diagonal_wins(score) >= N - 1


def test_video_is_the_digit_being_written(batch):
    """The last frame is the photo (same scene, new noise) and ink only accumulates along the path."""

    def blocks(x):  # 4x4 block means: keeps the scene, averages the per-frame sensor noise away
        return x.reshape(*x.shape[:-3], 16, 4, 16, 4, 3).mean(axis=(-4, -2))

    last, photo = blocks(batch.videos[:, -1].astype(np.float64)), blocks(batch.images.astype(np.float64))
    same = np.abs(last - photo).mean(axis=(1, 2, 3))
    shuffled = np.abs(last - np.roll(photo, 1, axis=0)).mean(axis=(1, 2, 3))
    assert same.max() < 4 and (shuffled > 2 * same).all()
    for i in range(N):  # ink on the instance's path only grows from frame to frame
        on_path = path_mask(batch, i) > 0
        ink = np.array([inkness(f)[on_path].mean() for f in batch.videos[i]])
        assert (np.diff(ink) > -0.1 * ink[-1]).all() and ink[0] < 0.5 * ink[
            -1
        ]  # (the pen tip comes and goes)


def test_audio_holds_a_spoken_word(batch):
    win = batch.audio[:, : 32000 // 800 * 800].reshape(N, -1, 800)  # 50 ms windows
    energy = 10 * np.log10((win**2).mean(-1) + 1e-12)
    assert (energy.max(1) - np.median(energy, 1) > 4).all()  # the word stands out of the noise floor


def test_captions_and_prompts(world, batch):
    for d, c in zip(batch.digit, batch.captions, strict=True):
        assert WORDS[d] in c or str(d) in c
    prompts = world.class_prompts()
    assert len(prompts) == 10 and all(WORDS[d] in " ".join(p) for d, p in enumerate(prompts))
    assert world.class_prompts(["a spoken {}"])[7] == ["a spoken seven"]  # `{}` is the class word, as in eval
    for bad in (["a {ink} digit"], ["no slot"], ["{} and {}"]):
        with pytest.raises(ValueError, match="exactly one"):
            world.class_prompts(bad)


# ---------------------------------------------------------------- the shipped speech pool


def test_speech_pool_manifest_matches_files():
    folder = Path(str(pool_dir()))
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(p.name for p in folder.glob("*.ogg"))
    assert sorted({r["file"] for r in manifest["recordings"]}) == files
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 5_000_000  # three engines, 176 voices: 4.0 MB
    keys = [(r["voice"], r["digit"]) for r in manifest["recordings"]]
    assert len(keys) == len(set(keys)) == 10 * len(manifest["voices"])
    for name in files[:: max(1, len(files) // 12)]:  # decode a spread of files
        wave, sr = sf.read(folder / name, dtype="float32")
        assert sr == manifest["sample_rate"] == 16000 and wave.ndim == 1
        for r in (r for r in manifest["recordings"] if r["file"] == name):
            word = wave[r["start"] : r["start"] + r["frames"]]
            before = wave[max(0, r["start"] - 1600) : r["start"] - 400]  # inside the 150 ms gap
            assert len(word) == r["frames"] and np.sqrt((word**2).mean()) > 20 * np.sqrt(
                (before**2).mean() + 1e-10
            )
    pool = load_pool()
    assert len(pool.waves) == len(manifest["recordings"])
    assert set(pool.voices.values()) == {"train", "test", "engine"}  # engine: the held-out engine


def _median_f0(wave: np.ndarray, sr: int = 16000) -> float:
    """Median F0 (Hz) of the loud voiced 40-ms frames of a recording, by autocorrelation (60-400 Hz)."""
    f0s = []
    for s in range(0, len(wave) - 640, 320):
        x = wave[s : s + 640] - wave[s : s + 640].mean()
        if np.sqrt((x**2).mean()) < 0.05:
            continue
        ac = np.correlate(x, x, "full")[639:]
        lag = sr // 400 + int(np.argmax(ac[sr // 400 : sr // 60]))
        if ac[lag] > 0.4 * ac[0]:  # periodic: a voiced frame
            f0s.append(sr / lag)
    return float(np.median(f0s))


# variants named "m...": male; the others female
PITCH_VARIANTS = {"m1", "m3", "m4", "m6", "f2", "f5", "belinda", "aunty"}


@pytest.mark.parametrize("accent", ["en-gb", "en-us", "en-gb-x-rp"])
def test_speech_pool_voice_variants_apply_in_every_accent(accent):
    # espeak-ng ignores a variant after the language name "en-gb" (every en-gb voice was one male voice, with
    # female variants at ~100 Hz); the female variants must sound female in every accent, the male ones male
    folder = Path(str(pool_dir()))
    f0 = {}
    for v in load_manifest()["voices"]:
        if v.get("accent") == accent and v["variant"] in PITCH_VARIANTS:
            f0[v["variant"]] = _median_f0(sf.read(folder / f"{v['voice']}.ogg", dtype="float32")[0])
    male = [f for k, f in f0.items() if k.startswith("m")]
    female = [f for k, f in f0.items() if not k.startswith("m")]
    assert male and female and max(male) < 130 < 160 < min(female), f0


# ---------------------------------------------------------------- files and model inputs


def test_to_files_round_trip(tmp_path, world):
    x = world.sample("test", 3, seed=9)
    manifest = to_files(x, tmp_path)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["id"] for r in rows] == x.ids and rows[1]["attributes"]["surface"] == x.surface[1]
    r = rows[1]
    assert set(r["files"]) == {"image", "video", "audio", "depth", "thermal", "imu"} and r["digit"] == 1
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / r["files"]["image"])), x.images[1])
    wave, sr = sf.read(tmp_path / r["files"]["audio"], dtype="float32")
    assert sr == 16000 and np.abs(wave - x.audio[1]).max() < 1.1 / 32768
    th = np.asarray(Image.open(tmp_path / r["files"]["thermal"]), np.float64) / 65535
    assert np.abs(th - x.thermal[1]).max() < 1e-5
    with av.open(str(tmp_path / r["files"]["video"])) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert frames.shape == x.videos[1].shape and np.abs(frames.astype(int) - x.videos[1]).mean() < 6
    with open(tmp_path / r["files"]["imu"]) as f:
        table = list(csv.DictReader(f))
    assert len(table) == 400 and float(table[1]["accl_z"]) == pytest.approx(float(x.imu[1, 2, 1]), rel=1e-6)
    # the repository's loaders read these files back into the world's own values
    disparity = load_depth([tmp_path / r["files"]["depth"]], size=64)[0, 0].numpy()
    assert np.abs(disparity - x.depth[1]).max() < 0.05  # millimetre quantisation
    imu = load_imu([tmp_path / r["files"]["imu"]], length=400, duration=world.window_seconds)[0].numpy()
    np.testing.assert_allclose(imu, x.imu[1], rtol=1e-5, atol=1e-6)


def test_model_inputs(batch):
    img = image_tensor(batch.images[:2])
    want = (batch.images[1, 5, 7, 2] / 255 - CLIP_MEAN[2]) / CLIP_STD[2]
    assert img.shape == (2, 3, 64, 64) and img[1, 2, 5, 7].item() == pytest.approx(want, abs=1e-6)
    vid = video_tensor(batch.videos[:2])
    assert vid.shape == (2, 4, 3, 2, 64, 64)
    torch.testing.assert_close(
        vid[1, 2, :, 1], image_tensor(batch.videos[1, 5][None])[0]
    )  # clip 2 = frames 4, 5
    assert imu_tensor(batch.imu[:2], 2000).shape == (2, 6, 2000)
    shapes = {
        "vision": (3, 32, 32),
        "text": (77,),
        "audio": (1, 128, 204),
        "depth": (1, 64, 64),
        "imu": (6, 400),
    }
    out = to_model_inputs(batch.select(slice(0, 3)), shapes)
    assert (
        out["vision"].shape == (3, 3, 32, 32)
        and out["text"].shape == (3, 77)
        and out["text"].dtype == torch.int64
    )
    assert out["audio"].shape == (3, 1, 1, 128, 204) and torch.isfinite(out["audio"]).all()
    torch.testing.assert_close(out["depth"][:, 0], torch.from_numpy(batch.depth[:3]))
    no_audio = batch.select([0, 1])
    no_audio.audio = None
    with pytest.raises(ValueError, match="modality 'audio' was not rendered"):
        to_model_inputs(no_audio, {"audio": (1, 128, 204)})
