"""The service's own limits on what an upload decodes to, read from the file's header before anything is decoded.

A 3 MB `.npz` can hold a compressed 30000 x 30000 array, a 300-byte PNG can claim 60000 x 60000 pixels, a WAV can
claim a 1 Hz rate that the loader resamples to 16 kHz: the byte limit on uploads says nothing about these. So each
upload's header is read (Pillow's `open` reads only the header; numpy's format header; `soundfile.info`; PyAV's
stream parameters) and compared with `Limits` before detection or loading. A refusal is an `UploadError` with 413
(too large once decoded) or 422 (a header that makes no sense). The library's loaders apply their own bounds too.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bindkit.serve.uploads import MAX_UPLOAD_BYTES, UploadError
from bindkit.store.detect import AUDIO_EXT, IMAGE_EXT, VIDEO_EXT


@dataclass(frozen=True)
class Limits:
    """What one upload may decode to, and how much work may wait (`create_app(limits=...)` changes them)."""

    max_upload_bytes: int = MAX_UPLOAD_BYTES  # the file as sent
    max_pixels: int = 40_000_000  # per image or video frame (about 120 MB as RGB)
    max_aspect: float = (
        50.0  # long side / short side: the loaders resize the short side up to the model's size
    )
    max_array_bytes: int = 128 * 1024 * 1024  # a .npy, or all arrays of a .npz, decompressed
    max_seconds: float = 600.0  # audio and video duration
    min_sample_rate: int = 1000
    max_sample_rate: int = 384_000
    max_csv_rows: int = 1_000_000  # IMU samples
    max_batch: int = 64  # items in one forward pass (batch.py)
    max_queue: int = 256  # requests waiting for the model before new ones get 503
    request_timeout_s: float = 30.0  # a request waiting longer for the model gets 503


def check_decoded(path: Path, name: str, limits: Limits) -> None:
    """Refuse an upload (saved at `path`, sent as `name`) whose header promises more than `limits` allow."""
    ext = path.suffix.lower()
    if ext in IMAGE_EXT:
        _check_image(path, name, limits)
    elif ext == ".npy":
        with open(path, "rb") as f:
            _check_array_bytes(_npy_bytes(f, name), name, limits)
    elif ext == ".npz":
        _check_npz(path, name, limits)
    elif ext in AUDIO_EXT:
        _check_audio(path, name, limits)
    elif ext in VIDEO_EXT:
        _check_video(path, name, limits)
    elif ext == ".csv":
        with open(path, "rb") as f:
            rows = sum(1 for _ in f)
        if rows > limits.max_csv_rows + 1:  # + a header line
            raise UploadError(f"{name}: {rows} rows, more than the {limits.max_csv_rows} allowed", 413)


def _check_image(path: Path, name: str, limits: Limits) -> None:
    from PIL import Image

    try:
        with Image.open(path) as img:  # reads the header only
            w, h = img.size
    except Image.DecompressionBombError as e:
        raise UploadError(f"{name}: image too large ({e})", 413) from e
    except Exception as e:  # noqa: BLE001 - any header Pillow cannot read is a bad upload
        raise UploadError(f"{name}: not a readable image ({type(e).__name__})", 422) from e
    _check_frame(w, h, name, limits)


def _check_frame(w: int, h: int, name: str, limits: Limits) -> None:
    if w * h > limits.max_pixels:
        raise UploadError(f"{name}: {w}x{h} pixels, more than the {limits.max_pixels} allowed", 413)
    if min(w, h) < 1 or max(w, h) > limits.max_aspect * min(w, h):
        raise UploadError(f"{name}: {w}x{h} pixels, more elongated than {limits.max_aspect:.0f}:1", 413)


def _npy_bytes(f: Any, name: str) -> int:
    """Bytes that the .npy stream `f` decodes to, from its header alone."""
    try:
        version = np.lib.format.read_magic(f)
        read = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(f)  # the header only, never the data
    except Exception as e:  # noqa: BLE001 - a malformed header is a bad upload, whatever numpy raises
        raise UploadError(f"{name}: not a readable .npy array ({e})", 422) from e
    if dtype.hasobject:
        raise UploadError(f"{name}: object arrays (pickles) are refused", 422)
    return int(np.prod(shape, dtype=np.float64) * dtype.itemsize)


def _check_array_bytes(n: float, name: str, limits: Limits) -> None:
    if n > limits.max_array_bytes:
        raise UploadError(
            f"{name}: arrays of {n / 2**20:.0f} MiB decoded, more than the {limits.max_array_bytes // 2**20} MiB "
            "allowed", 413)  # fmt: skip


def _check_npz(path: Path, name: str, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if i.filename.endswith(".npy")]
            total = 0
            for info in members[:64]:
                with z.open(info) as f:  # decompresses only as far as the header
                    total += _npy_bytes(f, f"{name}:{info.filename}")
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise UploadError(f"{name}: not a readable .npz archive ({e})", 422) from e
    if len(members) > 64:
        raise UploadError(f"{name}: {len(members)} arrays in one .npz, more than 64", 413)
    _check_array_bytes(total, name, limits)


def _check_audio(path: Path, name: str, limits: Limits) -> None:
    import soundfile as sf

    try:
        info = sf.info(str(path))
        rate, seconds = int(info.samplerate), float(info.frames) / max(int(info.samplerate), 1)
    except Exception:  # noqa: BLE001 - formats libsndfile does not read (m4a, some mp3): PyAV's header
        rate, seconds = _av_audio(path, name)
    if not limits.min_sample_rate <= rate <= limits.max_sample_rate:
        raise UploadError(
            f"{name}: sample rate {rate} Hz outside {limits.min_sample_rate}-{limits.max_sample_rate} Hz", 422
        )
    _check_seconds(seconds, name, limits)


def _av_audio(path: Path, name: str) -> tuple[int, float]:
    import av

    try:
        with av.open(str(path)) as c:
            stream: Any = next(s for s in c.streams if s.type == "audio")
            return int(stream.rate or 0), (c.duration or 0) / av.time_base
    except Exception as e:  # noqa: BLE001 - no audio stream, or nothing PyAV can open
        raise UploadError(f"{name}: not a readable audio file ({type(e).__name__})", 422) from e


def _check_video(path: Path, name: str, limits: Limits) -> None:
    import av

    try:
        with av.open(str(path)) as c:
            streams: list[Any] = [s for s in c.streams if s.type == "video"]
            seconds = (c.duration or 0) / av.time_base
            sizes = [(s.codec_context.width or 0, s.codec_context.height or 0) for s in streams]
    except Exception as e:  # noqa: BLE001 - anything PyAV cannot open is a bad upload
        raise UploadError(f"{name}: not a readable video ({type(e).__name__})", 422) from e
    if not streams:
        return  # a container with only sound: detected and loaded as audio, or refused by the loaders
    for w, h in sizes:
        _check_frame(w, h, name, limits)
    _check_seconds(seconds, name, limits)


def _check_seconds(seconds: float, name: str, limits: Limits) -> None:
    if seconds > limits.max_seconds:
        raise UploadError(
            f"{name}: {seconds:.0f} s long, more than the {limits.max_seconds:.0f} s allowed", 413
        )
