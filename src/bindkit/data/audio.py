"""Audio → `[B, clips, 1, mel, frames]` log-mel inputs: the official ImageBind audio pipeline, batched.

    x = load_audio(["a.wav", "b.flac", "clip.mp4", (waveform, 44100)])   # (4, 3, 1, 128, 204) float32
    x = load_audio(paths, num_mel_bins=64, target_length=104)             # a smaller audio encoder
    res = load_audio(paths, errors="skip")                                # LoadResult(tensor, skipped)

Inputs: file paths (wav, flac, ogg, mp3 via libsndfile; the audio track of mp4/mkv/webm/m4a/... via PyAV), bytes
or binary file objects of such files, or `(waveform, sample_rate)` with the waveform `[C, N]` or `[N]` (float, or
int16/int32 PCM scaled by 2^-15 / 2^-31; the caller's array is never modified).

Per item, as the official `load_and_transform_audio_data`: decode to float32 `[C, N]` (16-bit PCM / 32768),
resample to 16 kHz with torchaudio's default windowed sinc (`resample.py`), cut `clips_per_file` clips of
`clip_duration` s starting at k * (duration - clip_duration) / (clips_per_file - 1) in exact rational arithmetic on
the float64 value of `duration - clip_duration` (all clips are [0, clip_duration] for a shorter file), remove
each clip's mean (over all channels), take a Kaldi fbank of channel 0 only (`fbank.py`), transpose to
`[mel, frames]`, right-pad with 0 or crop to `target_length`, and normalise with `(x - mean) / std` after padding
(so padded cells hold `-mean / std`, 0.46706 by default).

Short files (`pad`): the official rule, `pad="fbank"` (default, kept for parity), pads the log-mel frames of a file
shorter than a clip with zeros after the filterbank (cells of one constant, `-mean / std`), which no clip of a
longer file ever shows. `pad="centre"` or `pad="start"` is a non-official mode that instead pads the 16 kHz
waveform with silence to the clip length (the sound centred, or at the start) before clips are cut, so a short word
looks like the same word recorded inside a quiet clip. Use it only with a model trained that way (the demo's model
stores `pad` in its config's `preprocess`, so `bindkit.data.load(..., config=...)` applies it by itself).

In-place mean removal: the official clips are views of one shared waveform and their means are subtracted in
place, so a clip overlapping an earlier one sees samples already shifted by that clip's mean (and a file shorter
than a clip is reused three times, losing a tiny residual mean each time). With a DC offset this moves
low-frequency cells by more than 1. `inplace_mean=True` (default) reproduces it; `inplace_mean=False` gives every
clip its own copy, which is what the official code presumably meant (use it only with a model trained that way).

Errors: a missing, empty, unreadable, truncated (WAV/AIFF data chunk, Ogg stream, FLAC, or an MP3 whose Xing/Info/
VBRI header states more frames than decode: "header says N frames, decoded M") or sample-less file, a non-finite
waveform, or audio shorter than one 25 ms frame (where the official loader fails on an assertion) is reported with
its index, name and reason; one `LoadError` lists every bad item of the batch, or `errors="skip"` returns the good
ones and the skipped list. An MP3 without such a header has only an estimated length (a cut there goes unnoticed);
when libsndfile's estimate is reached, which may be short of the real end, FFmpeg decodes the file instead.

Speed: decoding runs on worker threads, a few chunks ahead of the compute; resampling kernels are cached per
rate pair and each rate group is resampled by one strided conv over a packed buffer (run as banded matmuls);
clips of many files are framed, FFT'd and mel-projected together, CLIP_CHUNK clips per call so that the scratch
memory stays small and is reused. `benchmarks/bench_audio.py` compares this with a per-file, per-clip loop.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
from collections import deque
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
from bindkit.data.limits import check_audio, check_file, read_stream
from bindkit.data.resample import output_length, resample_many

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".m4a", ".aac", ".opus", ".wma", ".3gp"}
CLIP_CHUNK = 16  # clips per batched fbank call: (15, 198, 512) float32 frames, 6 MB of reused scratch
FILE_CHUNK = 16  # files per compute step; up to 2 more chunks decode meanwhile
MP3_SLACK = 3 * 1152  # samples: encoder delay and padding (gapless info) may be counted or not; 3 MPEG frames
# FFmpeg demuxers that read playlists (other files), text or images, not an audio stream
AV_REFUSED = {"hls", "concat", "dash", "tty", "sdp", "rtp", "rtsp", "image2", "ffmetadata"}
MP3_TAG_SEARCH = 2048  # bytes searched for a Xing/Info/VBRI tag: a little junk before the first frame is ok


# ---------------------------------------------------------------------------------------------------- decoding
def _av_truncation(container: Any, stream: Any, src: Any, decoded: int) -> str | None:
    """Why an MP3 FFmpeg decoded is cut short, if it is (FFmpeg only logs "filesize and duration do not match")."""
    if container.format.name != "mp3" or not stream.duration:  # other formats' durations are looser
        return None
    return _mp3_truncation(src, round(stream.duration * stream.time_base * stream.rate), decoded)


def _decode_av(src: Any, why_not_sf: str = "") -> tuple[torch.Tensor, int]:
    """The first audio stream of any container FFmpeg reads, as float32 `[C, N]` at its own rate."""
    import av  # only needed for video containers and formats libsndfile does not read

    try:
        with av.open(src) as container:
            if not container.streams.audio:
                raise ItemError("no audio stream in the file")
            stream = container.streams.audio[0]
            _check_av_audio(container, stream)
            chunks = _av_samples(container, stream)
            rate = stream.rate
            if reason := _av_truncation(container, stream, src, sum(c.shape[1] for c in chunks)):
                raise ItemError(reason)
    except ItemError:
        raise
    except Exception as e:  # FFmpeg's errors are many and undocumented; keep both decoders' messages
        sf_part = f"libsndfile: {why_not_sf}; " if why_not_sf else ""
        raise ItemError(f"not a readable audio file ({sf_part}FFmpeg: {type(e).__name__}: {e})") from e
    if not chunks:
        raise ItemError("no audio samples (0 frames)")
    return torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32, copy=False)), int(rate)


def _check_av_audio(container: Any, stream: Any) -> None:
    """Refuse playlist/text demuxers, and rates and stated durations outside `Limits`, before decoding."""
    if container.format.name in AV_REFUSED:
        raise ItemError(f"not an audio container (FFmpeg's {container.format.name!r} demuxer is not used)")
    if not stream.rate:
        raise ItemError("not a readable audio file (FFmpeg finds an audio stream without a sample rate)")
    seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
    if not seconds and container.duration:
        seconds = container.duration / 1_000_000  # microseconds
    check_audio(round(seconds * (stream.rate or 1)), stream.rate or 0, stream.channels or 1)


def _av_samples(container: Any, stream: Any) -> list[np.ndarray]:
    """Decoded float32 `[C, n]` chunks, counting frames against `Limits` (headers may understate the length)."""
    import av

    to_float = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
    chunks: list[np.ndarray] = []
    frames = 0
    for fr in _with_flush(container.decode(stream)):
        for f in to_float.resample(fr):
            chunks.append(f.to_ndarray())
            frames += chunks[-1].shape[1]
            check_audio(frames, stream.rate, chunks[-1].shape[0])
    return chunks


def _with_flush(frames: Iterator[Any]) -> Iterator[Any]:
    yield from frames
    yield None  # flushes the resampler


def _read_at(src: Any, offset: int, size: int) -> bytes:
    """Up to `size` bytes at `offset` of a path or an in-memory stream, leaving the stream's position alone."""
    if isinstance(src, io.BytesIO):
        with src.getbuffer() as buf:
            return bytes(buf[offset : offset + size])
    with open(src, "rb") as f:
        f.seek(offset)
        return f.read(size)


def _mp3_declares_length(src: Any) -> bool:
    """Whether an MP3 opens with a Xing/Info (frame count flag set) or VBRI frame, i.e. states its length.

    Without one, libsndfile (mpg123) and FFmpeg only estimate the length from the file size and a bitrate.
    """
    head = _read_at(src, 0, 10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:  # skip an ID3v2 tag: syncsafe size, plus a footer if flagged
        size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
        start = 10 + size + 10 * (head[5] >> 4 & 1)
    frame = _read_at(src, start, MP3_TAG_SEARCH)  # the tag sits 13 to 36 bytes into the first frame
    for tag in (b"Xing", b"Info"):
        at = frame.find(tag)
        if at >= 0:
            return len(frame) >= at + 8 and bool(frame[at + 7] & 1)  # flags: bit 0 = frame count present
    return b"VBRI" in frame


def _mp3_truncation(src: Any, declared: int, decoded: int) -> str | None:
    """Why an MP3 is cut short, if its Xing/VBRI header states more frames than could be decoded."""
    if decoded >= declared - MP3_SLACK or not _mp3_declares_length(src):
        return None
    return f"truncated file: the MP3 header says {declared} frames, decoded {decoded}"


def _truncation(f: sf.SoundFile, frames_read: int, src: Any) -> str | None:
    """Why a file libsndfile opened is cut short, if it is: it reads what is there and only logs the rest."""
    declared = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", f.extra_info, re.M)  # WAV/AIFF-style
    if declared and 0 < int(declared[2]) < int(declared[1]) < 0xFFFFFF00:  # 0 or ~4 GiB: a streamed file
        return f"truncated file: its header declares {declared[1]} bytes of audio, only {declared[2]} are present"
    if "lacks an end-of-stream bit" in f.extra_info:
        return "truncated file: the Ogg stream ends without its end-of-stream page"
    if f.format == "FLAC" and 0 < frames_read < f.frames:
        return f"truncated file: FLAC header declares {f.frames} frames, only {frames_read} could be decoded"
    if f.format == "MP3":  # mpg123 decodes up to the cut and only prints a warning ("Xing stream size off")
        return _mp3_truncation(src, f.frames, frames_read)
    return None


def _decode_sf(src: Any) -> tuple[torch.Tensor, int] | str:
    """float32 `[C, N]` via libsndfile, or libsndfile's complaint when it cannot open the file."""
    try:
        f = sf.SoundFile(src)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        return str(e).split(": ", 1)[-1] if "Error opening" in str(e) else str(e)
    with f:
        check_audio(f.frames, f.samplerate, f.channels)  # from the header, before reading any sample
        pcm16 = f.subtype == "PCM_16"  # read as int16: far cheaper than libsndfile's own float conversion
        try:
            data = f.read(dtype="int16" if pcm16 else "float32", always_2d=True)  # (N, C)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise ItemError(f"corrupt or truncated audio ({e})") from e
        if reason := _truncation(f, data.shape[0], src):
            raise ItemError(reason)
        if f.format == "MP3" and data.shape[0] == f.frames and not _mp3_declares_length(src):
            return ""  # soundfile stops at mpg123's estimate, which may be short: FFmpeg reads to the end
        rate = f.samplerate
    wave = torch.empty(data.shape[1], data.shape[0])
    wave.copy_(torch.from_numpy(data).t())  # to float32 and planar (C, N) in one pass
    if pcm16:
        wave.mul_(1.0 / 32768)  # exactly libsndfile's (and torchaudio's) float scaling: a power of two
    return wave, int(rate)


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
    """Decode one item (path, bytes, binary file, `(waveform, rate)`) to float32 `[C, N]` and its sample rate."""
    if isinstance(item, tuple) and len(item) == 2:
        wave, rate = _from_array(*item)
    elif isinstance(item, (str, Path)):
        p = Path(item)
        check_file(p)  # a regular, non-empty file: never a FIFO or device, which would block or never end
        decoded = "" if p.suffix.lower() in VIDEO_SUFFIXES else _decode_sf(str(p))  # "": straight to FFmpeg
        wave, rate = _decode_av(str(p), decoded) if isinstance(decoded, str) else decoded
    elif isinstance(item, (bytes, bytearray, memoryview)) or hasattr(item, "read"):
        data = read_stream(item) if hasattr(item, "read") else bytes(item)  # a binary file object, or bytes
        if not isinstance(data, bytes):
            raise ItemError("file object must be opened in binary mode")
        if len(data) == 0:
            raise ItemError("empty input (0 bytes)")
        decoded = _decode_sf(io.BytesIO(data))
        wave, rate = _decode_av(io.BytesIO(data), decoded) if isinstance(decoded, str) else decoded
    elif isinstance(item, (np.ndarray, torch.Tensor)):
        raise ItemError("a bare waveform needs its sample rate: pass (waveform, sample_rate)")
    else:
        raise ItemError(f"unsupported input type {type(item).__name__}")
    if wave.shape[-1] == 0 or wave.shape[0] == 0:
        raise ItemError("no audio samples (0 frames)")
    if not math.isfinite(float(wave.sum())) and not bool(torch.isfinite(wave).all()):  # cheap test first
        raise ItemError("waveform contains NaN or infinite samples")
    return wave, rate


# ---------------------------------------------------------------------------------------------------- clips
PAD_MODES = ("fbank", "centre", "start")


def pad_to_clip(wave: torch.Tensor, samples: int, mode: str) -> torch.Tensor:
    """`[C, N]` padded with silence to `samples` (sound centred or at the start); as it is when long enough or
    when `mode` is the official "fbank" padding."""
    short = samples - wave.shape[-1]
    if mode == "fbank" or short <= 0:
        return wave
    left = short // 2 if mode == "centre" else 0
    return torch.nn.functional.pad(wave, (left, short - left))


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


def _clips_into(
    wave: torch.Tensor, slices: list[tuple[int, int]], rows: torch.Tensor, inplace_mean: bool
) -> list[int]:
    """Write each clip's channel 0, its mean over all channels removed, into `rows` `(S, keep)`; return lengths."""
    lengths = []
    for row, (a, b) in zip(rows, slices, strict=True):
        view = wave[:, a:b]  # (C, n); a view of the shared 16 kHz buffer, as in the official loader
        n = min(view.shape[1], rows.shape[1])  # samples past `keep` would only make cropped frames
        if inplace_mean:  # shifts the shared buffer, so later overlapping clips see it (official behaviour)
            view -= view.mean()
            row[:n] = view[0, :n]
        else:
            torch.sub(view[0, :n], view.mean(), out=row[:n])
        row[n:] = 0
        lengths.append(n)
    return lengths


def _write_normalised(fb: torch.Tensor, lengths: list[int], out: torch.Tensor, opts: dict[str, Any]) -> None:
    """Pad/crop log-mel `(m, mel, F)` into `out` `(m, mel, target)` and normalise, as (x - mean) / std."""
    mean = torch.tensor([opts["mean"]], dtype=torch.float32)  # one-element tensors, as in torchvision
    std = torch.tensor([opts["std"]], dtype=torch.float32)
    f = min(fb.shape[-1], opts["target_length"])
    torch.sub(fb[..., :f], mean, out=out[..., :f])
    pad = torch.zeros(1).sub_(mean)  # a right-padded cell: official zero padding, normalised like the rest
    out[..., f:] = pad
    for row, n in enumerate(lengths):  # frames computed over another clip's zero padding are not real
        out[row, :, min(num_frames(n, opts["sample_rate"]), f) :] = pad
    out.div_(std)


def _features(waves: list[torch.Tensor], out: torch.Tensor, opts: dict[str, Any]) -> None:
    """Normalised log-mel of every clip of 16 kHz `waves` into `out` `(len * S, mel, T)`, ~CLIP_CHUNK per fbank."""
    sr, per = opts["sample_rate"], opts["clips_per_file"]
    window, hop, _ = frame_geometry(sr)
    files = max(1, CLIP_CHUNK // per)
    buf = torch.empty(files * per, window + hop * (opts["target_length"] - 1))  # (clips, keep), reused
    work: dict = {}  # fbank scratch memory, reused chunk after chunk
    for f0 in range(0, len(waves), files):
        lengths = []
        for i, w in enumerate(waves[f0 : f0 + files]):
            slices = clip_slices(w.shape[-1], sr, opts["clip_duration"], per)
            lengths += _clips_into(w, slices, buf[i * per : (i + 1) * per], opts["inplace_mean"])
        fb = log_fbank(buf[: len(lengths), : max(lengths)], opts["num_mel_bins"], sr, work)  # (m, mel, F)
        _write_normalised(fb, lengths, out[f0 * per : f0 * per + len(lengths)], opts)


def _warn_padding(name: str, frames: int, target_length: int) -> None:
    if abs(target_length - frames) / frames > 0.2:  # the official loader logs the same condition
        log.warning(
            "%s: large gap between audio n_frames(%d) and target_length (%d)", name, frames, target_length
        )


# ---------------------------------------------------------------------------------------------------- batch
def _decode_checked(item: Any, sample_rate: int) -> tuple[torch.Tensor, int]:
    """Decode and reject audio that is shorter than one fbank frame once at `sample_rate` (before any compute)."""
    wave, rate = decode_audio(item)
    check_audio(wave.shape[-1], rate, wave.shape[0], sample_rate)  # the resampled copy is bounded too
    n = wave.shape[-1] if rate == sample_rate else output_length(wave.shape[-1], rate, sample_rate)
    window = frame_geometry(sample_rate)[0]
    if n < window:
        raise ItemError(
            f"audio is {1000 * n / sample_rate:.1f} ms ({n} samples at {sample_rate} Hz), shorter than one "
            f"25 ms fbank frame ({window} samples); the official loader fails on it with an assertion"
        )
    return wave, rate


def _transform(decoded: list[tuple[str, torch.Tensor, int]], out: torch.Tensor, opts: dict[str, Any]) -> None:
    """Resample by rate group, cut clips, batched fbank, into `out` `(len(decoded), S, 1, mel, T)`."""
    sr, target = opts["sample_rate"], opts["target_length"]
    waves = [w for _, w, _ in decoded]
    for rate in sorted({r for _, _, r in decoded} - {sr}):
        members = [i for i, (_, _, r) in enumerate(decoded) if r == rate]
        for i, w in zip(members, resample_many([waves[i] for i in members], rate, sr), strict=True):
            waves[i] = w
    clip = int(Fraction(opts["clip_duration"]) * sr)  # the sampler's clip length in samples
    waves = [pad_to_clip(w, clip, opts["pad"]) for w in waves]
    for (name, _, _), w in zip(decoded, waves, strict=True):
        start, end = clip_slices(w.shape[-1], sr, opts["clip_duration"], opts["clips_per_file"])[0]
        _warn_padding(name, num_frames(min(w.shape[-1], end) - start, sr), target)
    _features(waves, out.view(-1, *out.shape[-2:]), opts)


def _decode_chunks(
    items: Sequence[Any], sample_rate: int, workers: int
) -> Iterator[tuple[list, list[Skipped]]]:
    """Decode on `workers` threads, yielding FILE_CHUNK items at a time while the next 2 chunks decode ahead.

    Yields `([(name, wave, rate), ...], [Skipped, ...])` per chunk, in input order.
    """
    with ThreadPoolExecutor(workers) as pool:  # libsndfile and FFmpeg release the GIL while decoding
        pending: deque[Future] = deque()
        for s in range(0, len(items), FILE_CHUNK):
            while len(pending) < 3 * FILE_CHUNK and s + len(pending) < len(items):  # bounded look-ahead
                pending.append(pool.submit(_decode_checked, items[s + len(pending)], sample_rate))
            decoded, bad = [], []
            for i in range(s, min(s + FILE_CHUNK, len(items))):
                try:
                    decoded.append((_name(items[i]), *pending.popleft().result()))
                except Exception as e:  # every bad item is reported, by index and name
                    reason = str(e) if isinstance(e, ItemError) else repr(e)
                    bad.append(Skipped(i, _name(items[i]), reason))
            yield decoded, bad


@contextlib.contextmanager
def _one_intra_op_thread() -> Iterator[None]:
    """torch on one intra-op thread in the calling thread for the duration, then as before.

    The resampling and fbank ops are small: splitting them over threads costs more than it gains (0.51 s vs 0.67 s
    for 200 files here), and idle OpenMP threads spin against the decoding threads (0.57 s vs 0.89 s in all). With
    OpenMP the setting belongs to the calling thread, so a model running on another thread keeps its threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _name(item: Any) -> str:
    """How an item is named in errors and warnings: its path, or its kind and size."""
    if isinstance(item, tuple) and len(item) == 2:
        return f"<waveform {describe(item[0]).strip('<>')} at {item[1]!r} Hz>"
    return describe(item)


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
    if opts["pad"] not in PAD_MODES:
        raise ValueError(f"pad must be one of {PAD_MODES}, got {opts['pad']!r}")


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
    pad: str = "fbank",
    errors: str = "raise",
    num_workers: int | None = None,
) -> torch.Tensor | LoadResult:
    """Audio files / bytes / (waveform, rate) → `[B, clips_per_file, 1, num_mel_bins, target_length]` float32."""
    check_errors(errors)
    one_wave = isinstance(items, tuple) and len(items) == 2 and isinstance(items[1], (int, np.integer))
    if one_wave or isinstance(items, (str, Path, bytes)) or not isinstance(items, Sequence):
        raise TypeError(
            f"expected a list of audio items, got {type(items).__name__}; wrap a single item in a list"
        )
    opts = dict(num_mel_bins=num_mel_bins, target_length=target_length, sample_rate=sample_rate, mean=mean, std=std,
                clip_duration=clip_duration, clips_per_file=clips_per_file, inplace_mean=inplace_mean, pad=pad)  # fmt: skip
    _check_options(opts)
    workers = max(1, min(8, os.cpu_count() or 1) if num_workers is None else num_workers)
    result = torch.empty(len(items), clips_per_file, 1, num_mel_bins, target_length)
    failures: list[Skipped] = []
    row = 0  # good items fill result in input order
    with _one_intra_op_thread():
        for decoded, bad in _decode_chunks(items, sample_rate, workers):
            failures += bad
            if decoded and not (failures and errors == "raise"):  # after a failure, only keep validating
                _transform(decoded, result[row : row + len(decoded)], opts)
                row += len(decoded)
    if failures and errors == "raise":
        raise LoadError("audio", len(items), failures)
    tensor = result if row == len(items) else result[:row].clone()
    return LoadResult(tensor, failures) if errors == "skip" else tensor
