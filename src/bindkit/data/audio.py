"""Audio → `[B, clips, 1, mel, frames]` log-mel inputs, the official ImageBind audio pipeline, batched.

Per item, as the official `load_and_transform_audio_data`: decode to float32 `[C, N]` (16-bit PCM / 32768),
resample to 16 kHz with torchaudio's default windowed sinc (`resample.py`), cut `clips_per_file` clips of
`clip_duration` s starting at k * (duration - clip_duration) / (clips_per_file - 1) in exact rational arithmetic on
the float64 value of `duration - clip_duration`, remove each clip's mean (over all channels), take a Kaldi fbank of
channel 0 (`fbank.py`), transpose to `[mel, frames]`, right-pad with 0 or crop to `target_length`, and normalise
with `(x - mean) / std` after padding (so padded cells hold `-mean / std`).

In-place mean removal: the official clips are views of one shared waveform and their means are subtracted in
place, so a clip overlapping an earlier one sees samples already shifted by that clip's mean (and a file shorter
than a clip is reused three times, losing a tiny residual mean each time). `inplace_mean=True` (default) reproduces
this; `inplace_mean=False` gives every clip its own copy, which is what the official code presumably intended.

Speed: decoding runs on worker threads; resampling kernels are cached per rate pair and each rate group is
resampled by one conv; every clip of every file is framed, FFT'd and mel-projected together (in chunks of
`CLIP_CHUNK` clips to bound memory). Inputs: file paths (wav, flac, ogg, mp3 via soundfile; the audio track of
mp4/mkv/webm/... via PyAV), bytes of such files, or `(waveform, sample_rate)` with waveform `[C, N]` or `[N]`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from bindkit.data.errors import ItemError, LoadError, LoadResult, Skipped, check_errors, describe
from bindkit.data.fbank import frame_geometry, log_fbank, num_frames
from bindkit.data.resample import output_length, resample_many

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".m4a", ".aac", ".opus", ".wma", ".3gp"}
CLIP_CHUNK = 96  # clips per batched fbank call: (96, 198, 512) float32 intermediates stay near 40 MB
FILE_CHUNK = 64  # files decoded ahead and resampled together


# ---------------------------------------------------------------------------------------------------- decoding
def _decode_av(src: Any) -> tuple[torch.Tensor, int]:
    """The first audio stream of any container FFmpeg reads, as float32 `[C, N]` at its own rate."""
    import av  # only needed for video containers and formats libsndfile does not read

    try:
        with av.open(src) as container:
            if not container.streams.audio:
                raise ItemError("no audio stream in the file")
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
            chunks = [f.to_ndarray() for fr in container.decode(stream) for f in to_float.resample(fr)]
            chunks += [f.to_ndarray() for f in to_float.resample(None)]
            rate = stream.rate
    except ItemError:
        raise
    except Exception as e:  # FFmpeg's errors are many and undocumented; keep the message
        raise ItemError(f"unreadable audio ({type(e).__name__}: {e})") from e
    if not chunks:
        raise ItemError("no audio samples (0 frames)")
    return torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32, copy=False)), int(rate)


def _decode_sf(src: Any) -> tuple[torch.Tensor, int] | None:
    """float32 `[C, N]` via libsndfile, or None when libsndfile does not know the format."""
    try:
        data, rate = sf.read(src, dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        if "Format not recognised" in str(e) or "unknown format" in str(e).lower():
            return None
        raise ItemError(f"unreadable audio ({e})") from e
    except (RuntimeError, ValueError, TypeError) as e:
        raise ItemError(f"unreadable audio ({e})") from e
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def _from_array(wave: Any, rate: Any) -> tuple[torch.Tensor, int]:
    """An in-memory waveform `[C, N]` or `[N]` (float, or int16/int32 PCM) as a private float32 copy."""
    if not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise ItemError(f"sample rate must be a positive int, got {rate!r}")
    w = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if w.ndim not in (1, 2):
        raise ItemError(f"waveform must be [C, N] or [N], got shape {tuple(w.shape)}")
    if w.dtype == np.int16:
        w = w.astype(np.float32) / 32768.0
    elif w.dtype == np.int32:
        w = w.astype(np.float32) / 2147483648.0
    elif not np.issubdtype(w.dtype, np.floating):
        raise ItemError(f"waveform dtype must be float, int16 or int32, got {w.dtype}")
    w = np.array(w, dtype=np.float32, copy=True, ndmin=2)  # a copy: in-place mean removal must not touch it
    return torch.from_numpy(w), int(rate)


def decode_audio(item: Any) -> tuple[torch.Tensor, int]:
    """Decode one item (path, bytes or `(waveform, sample_rate)`) to float32 `[C, N]` and its sample rate."""
    if isinstance(item, tuple) and len(item) == 2:
        wave, rate = _from_array(*item)
    elif isinstance(item, (str, Path)):
        p = Path(item)
        if not p.is_file():
            raise ItemError("file not found" if not p.exists() else "not a regular file")
        if p.stat().st_size == 0:
            raise ItemError("empty file (0 bytes)")
        decoded = None if p.suffix.lower() in VIDEO_SUFFIXES else _decode_sf(str(p))
        wave, rate = decoded or _decode_av(str(p))
    elif isinstance(item, (bytes, bytearray, memoryview)):
        if len(item) == 0:
            raise ItemError("empty input (0 bytes)")
        decoded = _decode_sf(io.BytesIO(bytes(item)))
        wave, rate = decoded or _decode_av(io.BytesIO(bytes(item)))
    elif isinstance(item, (np.ndarray, torch.Tensor)):
        raise ItemError("a bare waveform needs its sample rate: pass (waveform, sample_rate)")
    else:
        raise ItemError(f"unsupported input type {type(item).__name__}")
    if wave.shape[-1] == 0 or wave.shape[0] == 0:
        raise ItemError("no audio samples (0 frames)")
    if not bool(torch.isfinite(wave).all()):
        raise ItemError("waveform contains NaN or infinite samples")
    return wave, rate


# ---------------------------------------------------------------------------------------------------- clips
def clip_slices(
    num_samples: int, sample_rate: int = 16000, clip_duration: float = 2.0, clips_per_file: int = 3
) -> list[tuple[int, int]]:
    """Sample ranges `[start, end)` of the official constant-clips sampler (exact fractions, floor to samples)."""
    duration = num_samples / sample_rate  # a float64, as the official sampler receives it
    max_start = Fraction(max(duration - clip_duration, 0))  # the float64 value of duration - clip, exactly
    step = max_start / max(clips_per_file - 1, 1)
    length = Fraction(clip_duration)
    return [
        (int(k * step * sample_rate), int((k * step + length) * sample_rate)) for k in range(clips_per_file)
    ]


def _clip_samples(
    wave: torch.Tensor, slices: list[tuple[int, int]], keep: int, inplace_mean: bool
) -> list[torch.Tensor]:
    """Channel-0 samples of each clip after removing its mean over all channels, at most `keep` of them."""
    clips = []
    for a, b in slices:
        view = wave[:, a:b]  # (C, n); a view of the shared 16 kHz buffer, as in the official loader
        if inplace_mean:  # shifts the shared buffer, so later overlapping clips see it (official behaviour)
            view -= view.mean()
            clips.append(view[0, :keep].clone())
        else:
            clips.append(view[0, :keep] - view.mean())
    return clips


def _melspec(
    clips: list[torch.Tensor],
    num_mel_bins: int,
    target_length: int,
    sample_rate: int,
    mean: float,
    std: float,
) -> torch.Tensor:
    """Normalised log-mel `(M, 1, mel, target_length)` for 1-D clips of any lengths, batched in chunks."""
    out = torch.zeros(
        len(clips), num_mel_bins, target_length
    )  # 0 = official right padding (before normalising)
    order = sorted(range(len(clips)), key=lambda i: clips[i].shape[0])  # similar lengths share a chunk
    for c in range(0, len(order), CLIP_CHUNK):
        idx = order[c : c + CLIP_CHUNK]
        n = max(clips[i].shape[0] for i in idx)
        batch = torch.zeros(len(idx), n)
        for row, i in enumerate(idx):
            batch[row, : clips[i].shape[0]] = clips[i]
        fb = log_fbank(
            batch, num_mel_bins, sample_rate
        )  # (m, F, mel); frames past a shorter clip's end are junk, dropped below
        for row, i in enumerate(idx):
            f = min(num_frames(clips[i].shape[0], sample_rate), target_length)
            out[i, :, :f] = fb[row, :f].t()
    mean_t = torch.tensor([mean], dtype=torch.float32)
    std_t = torch.tensor([std], dtype=torch.float32)
    return out.sub_(mean_t).div_(std_t).unsqueeze(1)  # as torchvision Normalize: one-element tensors


def _warn_padding(name: str, frames: int, target_length: int) -> None:
    if abs(target_length - frames) / frames > 0.2:  # the official loader logs the same condition
        log.warning(
            "%s: large gap between audio n_frames(%d) and target_length (%d)", name, frames, target_length
        )


# ---------------------------------------------------------------------------------------------------- batch
def _decode_checked(item: Any, sample_rate: int) -> tuple[torch.Tensor, int]:
    """Decode and reject audio that is shorter than one fbank frame once at `sample_rate` (before any compute)."""
    wave, rate = decode_audio(item)
    n = wave.shape[-1] if rate == sample_rate else output_length(wave.shape[-1], rate, sample_rate)
    window = frame_geometry(sample_rate)[0]
    if n < window:
        raise ItemError(
            f"audio is {1000 * n / sample_rate:.1f} ms ({n} samples at {sample_rate} Hz), shorter than one "
            f"25 ms fbank frame ({window} samples); the official loader fails on it with an assertion"
        )
    return wave, rate


def _transform(decoded: list[tuple[str, torch.Tensor, int]], opts: dict[str, Any]) -> torch.Tensor:
    """Resample by rate group, cut clips, and run one batched fbank: `(len(decoded), S, 1, mel, T)`."""
    sr, target = opts["sample_rate"], opts["target_length"]
    waves = [w for _, w, _ in decoded]
    for rate in sorted({r for _, _, r in decoded} - {sr}):
        members = [i for i, (_, _, r) in enumerate(decoded) if r == rate]
        for i, w in zip(members, resample_many([waves[i] for i in members], rate, sr), strict=True):
            waves[i] = w
    window, hop, _ = frame_geometry(sr)
    keep = window + hop * (target - 1)  # samples that make `target` frames; later ones would be cropped away
    clips = []
    for (name, _, _), w in zip(decoded, waves, strict=True):
        slices = clip_slices(w.shape[-1], sr, opts["clip_duration"], opts["clips_per_file"])
        clips += _clip_samples(w, slices, keep, opts["inplace_mean"])
        _warn_padding(name, num_frames(min(w.shape[-1], slices[0][1]) - slices[0][0], sr), target)
    mel = _melspec(clips, opts["num_mel_bins"], target, sr, opts["mean"], opts["std"])
    return mel.view(len(decoded), opts["clips_per_file"], *mel.shape[1:])


def _decode_chunks(
    items: Sequence[Any], sample_rate: int, workers: int
) -> Iterator[tuple[list, list[Skipped]]]:
    """Decode on `workers` threads, FILE_CHUNK items at a time with the next chunk decoding ahead.

    Yields `([(name, wave, rate), ...], [Skipped, ...])` per chunk, in input order.
    """
    with ThreadPoolExecutor(workers) as pool:  # libsndfile and FFmpeg release the GIL while decoding

        def submit(s: int) -> list[Future]:
            return [
                pool.submit(_decode_checked, items[i], sample_rate)
                for i in range(s, min(s + FILE_CHUNK, len(items)))
            ]

        pending = submit(0)
        for s in range(0, len(items), FILE_CHUNK):
            done, pending = pending, submit(s + FILE_CHUNK)
            decoded, bad = [], []
            for i, fut in enumerate(done, start=s):
                try:
                    decoded.append((describe(items[i]), *fut.result()))
                except Exception as e:  # every bad item is reported, by index and name
                    bad.append(
                        Skipped(i, describe(items[i]), str(e) if isinstance(e, ItemError) else repr(e))
                    )
            yield decoded, bad


def _check_options(opts: dict[str, Any]) -> None:
    sr = opts["sample_rate"]
    if not isinstance(sr, int) or sr <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sr!r}")
    if opts["num_mel_bins"] < 3 or opts["target_length"] < 1 or opts["clips_per_file"] < 1:
        raise ValueError("num_mel_bins must be >= 3, target_length and clips_per_file >= 1")
    if opts["clip_duration"] * sr < frame_geometry(sr)[0]:
        raise ValueError(f"clip_duration {opts['clip_duration']} s is shorter than one 25 ms fbank frame")
    if not opts["std"] > 0:
        raise ValueError(f"std must be positive, got {opts['std']}")


def load_audio(
    items: Sequence[Any],
    *,
    num_mel_bins: int = 128,
    target_length: int = 204,
    sample_rate: int = 16000,
    clip_duration: float = 2.0,
    clips_per_file: int = 3,
    mean: float = -4.268,
    std: float = 9.138,
    inplace_mean: bool = True,
    errors: str = "raise",
    num_workers: int | None = None,
) -> torch.Tensor | LoadResult:
    """Audio files / bytes / (waveform, rate) → `[B, clips_per_file, 1, num_mel_bins, target_length]` float32."""
    check_errors(errors)
    if isinstance(items, (str, Path, bytes, tuple)) or not isinstance(items, Sequence):
        raise TypeError(
            f"expected a list of audio items, got {type(items).__name__}; wrap a single item in a list"
        )
    opts = dict(num_mel_bins=num_mel_bins, target_length=target_length, sample_rate=sample_rate, mean=mean, std=std,
                clip_duration=clip_duration, clips_per_file=clips_per_file, inplace_mean=inplace_mean)  # fmt: skip
    _check_options(opts)
    workers = max(1, min(8, os.cpu_count() or 1) if num_workers is None else num_workers)
    failures: list[Skipped] = []
    outputs = []
    for decoded, bad in _decode_chunks(items, sample_rate, workers):
        failures += bad
        if decoded and not (failures and errors == "raise"):  # after a failure, only keep validating
            outputs.append(_transform(decoded, opts))
    if failures and errors == "raise":
        raise LoadError("audio", len(items), failures)
    shape = (0, clips_per_file, 1, num_mel_bins, target_length)
    tensor = torch.cat(outputs) if outputs else torch.empty(shape)
    return LoadResult(tensor, failures) if errors == "skip" else tensor
