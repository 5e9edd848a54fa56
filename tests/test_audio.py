"""Audio loader: parity with the official loader's outputs, the resampler, the clip sampler, bad input."""

import hashlib
import json
import math

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from bindkit.data import audio as audio_mod
from bindkit.data.audio import clip_slices, decode_audio, load_audio
from bindkit.data.errors import LoadError
from bindkit.data.fbank import log_fbank
from bindkit.data.resample import output_length, resample, resample_many

PAD = 0.4670606553554535  # (0 + 4.268) / 9.138 in float32, from the fixture README


@pytest.fixture(scope="module")
def pre(fixtures_dir):
    folder = fixtures_dir / "preprocessing"
    cases = json.loads((folder / "cases.json").read_text())["cases"]
    audio = {k: v for k, v in cases.items() if v["kind"] == "audio"}
    return folder, audio, load_file(folder / "outputs.safetensors")


@pytest.fixture(scope="module")
def good(pre):
    folder, audio, _ = pre
    return [k for k, v in audio.items() if "error" not in v]


@pytest.fixture(scope="module")
def batch(pre, good):
    folder, audio, _ = pre
    return load_audio([folder / audio[k]["inputs"][0] for k in good])


def check_parity(out: torch.Tensor, ref: torch.Tensor, case: dict) -> None:
    """The fixture README's tolerances per band of the reference, the mean gap, and exact padded cells."""
    diff = (out - ref).abs()
    for lo, hi, tol in [(-0.5, math.inf, 5e-3), (-1.0, -0.5, 5e-2), (-math.inf, -1.0, 0.5)]:
        band = (ref > lo) & (ref <= hi)
        if band.any():
            assert diff[band].max() <= tol, (case["inputs"], lo, hi, diff[band].max().item())
    assert diff.mean() <= 2e-3
    for k, clip in enumerate(case["clips"]):
        frames = clip["fbank_frames"]
        if frames < out.shape[-1]:
            assert (out[k, 0, :, frames:] == PAD).all() and (ref[k, 0, :, frames:] == PAD).all()


def test_parity_with_official_loader(pre, good, batch):
    _, audio, tensors = pre
    assert batch.shape == (len(good), 3, 1, 128, 204) and batch.dtype == torch.float32
    for k, out in zip(good, batch, strict=True):
        check_parity(out, tensors[audio[k]["outputs"]["output"]][0], audio[k])


def test_batch_equals_one_by_one(pre, good, batch, monkeypatch):
    folder, audio, _ = pre
    monkeypatch.setattr(audio_mod, "FILE_CHUNK", 4)  # several decode-ahead chunks, mixed rates within each
    again = load_audio([folder / audio[k]["inputs"][0] for k in good], num_workers=3)
    assert (again - batch).abs().max() <= 1e-5  # other chunking, other fbank batches: same numbers
    for i in (0, 1, 6):  # a 16 kHz file, a resampled stereo file, a file shorter than a clip
        single = load_audio([folder / audio[good[i]]["inputs"][0]], num_workers=0)
        assert (single[0] - batch[i]).abs().max() <= 1e-5


def test_decoded_samples_are_bit_identical(pre):
    folder, audio, _ = pre
    for case in audio.values():  # wav (16-bit, read as int16 and scaled), flac, ogg, mp3
        wave, rate = decode_audio(folder / case["inputs"][0])
        info = case["decoded"]
        assert (rate, *wave.shape) == (info["sample_rate"], info["channels"], info["frames"])
        assert hashlib.sha256(wave.numpy().tobytes()).hexdigest() == info["float32_sha256"], case["inputs"]


def test_resampler_matches_torchaudio(pre):
    folder, audio, tensors = pre
    cases = [v for v in audio.values() if "resampled_16k" in v.get("outputs", {})]
    assert {c["decoded"]["sample_rate"] for c in cases} == {8000, 22050, 44100, 48000}
    waves = {}
    for c in cases:
        wave, rate = decode_audio(folder / c["inputs"][0])
        ref = tensors[c["outputs"]["resampled_16k"]]
        out = resample(wave, rate, 16000)
        assert (
            out.shape == ref.shape == (c["decoded"]["channels"], output_length(wave.shape[-1], rate, 16000))
        )
        assert (out - ref).abs().max() <= 1e-6
        waves.setdefault(rate, []).append((wave, ref))
    for rate, pairs in waves.items():  # one packed call per rate: each signal exactly as alone
        outs = resample_many([w for w, _ in pairs] * 2, rate, 16000)
        for out, (_, ref) in zip(outs, pairs * 2, strict=True):
            assert (out - ref).abs().max() <= 1e-6


def test_clip_slices_match_official_sampler(pre):
    _, audio, _ = pre
    for case in audio.values():
        n = case["decoded"]["frames"]
        rate = case["decoded"]["sample_rate"]
        n16 = n if rate == 16000 else output_length(n, rate, 16000)
        assert clip_slices(n16) == [tuple(c["sample_slice"]) for c in case["clips"]], case["inputs"]
    # the float64 trap from the README: 3.3 s starts its middle clip at sample 10399, not 10400
    assert clip_slices(52800)[1] == (10399, 42399)


def test_inplace_mean_variant(pre, good, batch):
    folder, audio, tensors = pre
    own = load_audio([folder / audio[k]["inputs"][0] for k in good], inplace_mean=False)
    for k, a, b in zip(good, batch, own, strict=True):
        ref = tensors[audio[k]["outputs"]["output"]][0]
        effect = audio[k]["inplace_effect_max_abs"]
        assert abs((b - ref).abs().max().item() - effect) <= 2e-3, k  # the documented distance from official
        if effect == 0:
            assert (a - b).abs().max() <= 1e-6


def test_shorter_than_one_frame_is_a_clear_error(pre):
    folder, audio, _ = pre
    path = str(folder / audio["audio.au10_wav16k_20ms"]["inputs"][0])
    with pytest.raises(
        LoadError, match=r"au10_wav16k_20ms\.wav.*20\.0 ms.*shorter than one 25 ms fbank frame"
    ):
        load_audio([path])
    with pytest.raises(
        LoadError, match="shorter than one"
    ):  # also after resampling: 150 samples at 48 kHz = 50
        load_audio([(np.ones(150, np.float32), 48000)])


def numpy_fbank(x: np.ndarray, num_mel_bins: int) -> np.ndarray:
    """Kaldi fbank re-derived in float64 numpy, frame by frame: (mel, frames)."""
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    edges = np.linspace(mel(20.0), mel(8000.0), num_mel_bins + 2)
    fft_mel = mel(np.arange(256) * 16000 / 512)
    banks = np.zeros((num_mel_bins, 257))
    for j in range(num_mel_bins):
        up = (fft_mel - edges[j]) / (edges[j + 1] - edges[j])
        down = (edges[j + 2] - fft_mel) / (edges[j + 2] - edges[j + 1])
        banks[j, :256] = np.maximum(0.0, np.minimum(up, down))
    n = np.arange(400)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / 399)
    cols = []
    for start in range(0, len(x) - 399, 160):
        f = x[start : start + 400].astype(np.float64)
        f = f - f.mean()
        f = f - 0.97 * np.concatenate([f[:1], f[:-1]])
        power = np.abs(np.fft.rfft(f * hann, 512)) ** 2
        cols.append(np.log(np.maximum(banks @ power, np.finfo(np.float32).eps)))
    return np.stack(cols, 1)


@pytest.mark.parametrize("num_mel_bins", [64, 128])
def test_fbank_against_numpy_rederivation(num_mel_bins):
    rng = np.random.default_rng(0)
    t = np.arange(20000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 300 * t * (1 + 3 * t)) + 0.01 * rng.standard_normal(t.size) + 0.2).astype(
        np.float32
    )
    out = log_fbank(torch.from_numpy(x)[None], num_mel_bins)[0].double().numpy()
    ref = numpy_fbank(x, num_mel_bins)
    assert out.shape == ref.shape == (num_mel_bins, 1 + (20000 - 400) // 160)
    loud = ref > np.log(1e-3)  # away from the floor, float32 rounding is negligible
    assert loud.mean() > 0.5 and np.abs(out - ref)[loud].max() < 1e-3


def test_small_model_shape_and_crop():
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal((2, 3 * 22050))).astype(np.float32)
    out = load_audio([(wave, 22050)], num_mel_bins=64, target_length=104, clips_per_file=2, mean=0.0, std=1.0)
    assert out.shape == (1, 2, 1, 64, 104)
    clip = resample(torch.from_numpy(wave), 22050, 16000)[:, :32000].double().numpy()  # clip 0 of [0, 2] s
    ref = numpy_fbank(clip[0] - clip.mean(), 64)[
        :, :104
    ]  # mean over both channels, fbank of the left, cropped
    assert np.abs(out[0, 0, 0].double().numpy() - ref).max() < 1e-3


def test_in_memory_inputs_match_files(pre, batch, good):
    folder, audio, _ = pre
    path = folder / audio[good[1]]["inputs"][0]  # 44.1 kHz stereo
    wave, rate = decode_audio(path)
    kept = wave.clone()
    arr = wave.numpy().copy()
    int16 = np.round(arr * 32768).astype(np.int16)
    with open(path, "rb") as fh:
        outs = load_audio([(wave, rate), (arr, rate), path.read_bytes(), fh, (int16, rate)])
    assert torch.equal(wave, kept)  # the caller's waveform is not shifted by the in-place mean removal
    for out in outs:
        assert (out - batch[1]).abs().max() <= 1e-5
    mono = load_audio([(arr[0], rate)])[0]  # a 1-D waveform is one channel
    assert (mono - load_audio([(arr[:1], rate)])[0]).abs().max() == 0


def test_audio_track_of_a_video_file(tmp_path):
    path = tmp_path / "tone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        stream.layout = "mono"
        t = np.arange(3 * 48000) / 48000
        tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
        for i in range(0, tone.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, i : i + 1024]), format="fltp", layout="mono"
            )
            frame.sample_rate = 48000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    wave, rate = decode_audio(path)
    assert rate == 48000 and wave.shape[0] == 1 and wave.shape[1] >= 3 * 48000
    spectrum = np.abs(np.fft.rfft(wave[0, 4800:100800].numpy()))
    assert abs(np.argmax(spectrum) * 48000 / 96000 - 440) <= 1
    assert load_audio([path, path.read_bytes()]).shape == (2, 3, 1, 128, 204)


@pytest.fixture
def bad_files(tmp_path):
    rng = np.random.default_rng(2)
    good = tmp_path / "good.wav"
    sf.write(good, (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32), 16000, subtype="PCM_16")
    data = good.read_bytes()
    files = {
        "good": good,
        "garbage": tmp_path / "garbage.wav",
        "empty": tmp_path / "empty.flac",
        "truncated": tmp_path / "truncated.wav",
        "zero_length": tmp_path / "zero.wav",
        "missing": tmp_path / "missing.ogg",
    }
    files["garbage"].write_bytes(rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["zero_length"].write_bytes(data[:44])  # a valid header with no samples
    return files


def test_each_kind_of_bad_file_has_a_clear_reason(bad_files):
    reasons = {
        "garbage": "not a readable audio file",
        "empty": r"empty file \(0 bytes\)",
        "truncated": "truncated file: its header declares 96000 bytes of audio, only",
        "zero_length": r"no audio samples \(0 frames\)",
        "missing": "file not found",
    }
    for name, reason in reasons.items():
        with pytest.raises(LoadError, match=reason):
            load_audio([bad_files[name]])


def test_batch_error_names_every_bad_item(bad_files, monkeypatch):
    monkeypatch.setattr(audio_mod, "FILE_CHUNK", 2)  # bad items in several decode chunks
    items = list(bad_files.values()) + [
        (np.zeros(0, np.float32), 16000),
        np.zeros(16000),
        (np.ones(8000), 16000),
    ]
    with pytest.raises(LoadError) as err:
        load_audio(items)
    failed = {f.index for f in err.value.failures}
    assert failed == set(range(1, 8)) and err.value.total == 9
    message = str(err.value)
    assert "7 of 9 audio item(s)" in message and "needs its sample rate" in message
    for path in list(bad_files.values())[1:]:
        assert str(path) in message


def test_skip_returns_good_items_and_the_skipped_list(bad_files):
    items = [bad_files["good"], bad_files["garbage"], bad_files["good"], bad_files["truncated"]]
    result = load_audio(items, errors="skip")
    alone = load_audio([bad_files["good"]])
    assert result.tensor.shape == (2, 3, 1, 128, 204)
    assert torch.equal(result.tensor[0], alone[0]) and torch.equal(result.tensor[1], alone[0])
    assert [(s.index, "truncated" in s.reason) for s in result.skipped] == [(1, False), (3, True)]
    assert result.kept(len(items)) == [0, 2]
    empty = load_audio([bad_files["missing"]], errors="skip")
    assert empty.tensor.shape == (0, 3, 1, 128, 204) and len(empty.skipped) == 1


def test_argument_errors():
    with pytest.raises(TypeError, match="wrap a single item in a list"):
        load_audio("a.wav")
    with pytest.raises(ValueError, match="errors must be one of"):
        load_audio([], errors="ignore")
    with pytest.raises(ValueError, match="clip_duration"):
        load_audio([], clip_duration=0.01)
    assert load_audio([]).shape == (0, 3, 1, 128, 204)


def test_loading_runs_torch_single_threaded_and_restores_the_thread_count():
    """The small fbank ops run on one intra-op thread during the call; the caller's setting comes back, and a load on
    another thread leaves this thread's setting alone."""
    import threading

    seen = []
    orig = audio_mod._transform
    wave = (torch.sin(torch.arange(48000) / 5.0)[None], 16000)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        audio_mod._transform = lambda *a: (seen.append(torch.get_num_threads()), orig(*a))
        ref = load_audio([wave])
        assert seen == [1] and torch.get_num_threads() == 2
        worker = threading.Thread(target=lambda: load_audio([wave]))
        worker.start()
        worker.join()
        assert torch.get_num_threads() == 2 and seen == [1, 1]
    finally:
        audio_mod._transform = orig
        torch.set_num_threads(before)
    assert torch.equal(ref, load_audio([wave]))
