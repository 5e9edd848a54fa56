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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    return [(int(k * step * sample_rate), int((k * step + length) * sample_rate)) for k in range(clips_per_file)]


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
    clips: list[torch.Tensor], num_mel_bins: int, target_length: int, mean: float, std: float
) -> torch.Tensor:
    """Normalised log-mel `(M, 1, mel, target_length)` for 1-D clips of any lengths, batched in chunks."""
    out = torch.zeros(len(clips), num_mel_bins, target_length)  # 0 = official right padding (before normalising)
    order = sorted(range(len(clips)), key=lambda i: clips[i].shape[0])  # similar lengths share a chunk
    for c in range(0, len(order), CLIP_CHUNK):
        idx = order[c : c + CLIP_CHUNK]
        n = max(clips[i].shape[0] for i in idx)
        batch = torch.zeros(len(idx), n)
        for row, i in enumerate(idx):
            batch[row, : clips[i].shape[0]] = clips[i]
        fb = log_fbank(batch, num_mel_bins)  # (m, F, mel); frames past a shorter clip's end are junk, dropped below
        for row, i in enumerate(idx):
            f = min(num_frames(clips[i].shape[0]), target_length)
            out[i, :, :f] = fb[row, :f].t()
    mean_t = torch.tensor([mean], dtype=torch.float32)
    std_t = torch.tensor([std], dtype=torch.float32)
    return out.sub_(mean_t).div_(std_t).unsqueeze(1)  # as torchvision Normalize: one-element tensors


def _warn_padding(name: str, frames: int, target_length: int) -> None:
    if abs(target_length - frames) / frames > 0.2:  # the official loader logs the same condition
        log.warning("%s: large gap between audio n_frames(%d) and target_length (%d)", name, frames, target_length)
