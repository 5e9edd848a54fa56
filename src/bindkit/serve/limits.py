"""The service's own limits on what an upload decodes to, read from the file's header before anything is decoded.

A 3 MB `.npz` can hold a compressed 30000 x 30000 array, a 300-byte PNG can claim 60000 x 60000 pixels, a WAV can
claim a 1 Hz rate that the loader resamples to 16 kHz: the byte limit on uploads says nothing about these. So each
upload's header is read (Pillow's `open` reads only the header; numpy's format header; `soundfile.info`; PyAV's
stream parameters) and checked before detection or loading, by the loaders' own checks in `bindkit.data.limits`
given the service's stricter caps (`Limits.loader_limits()`; the process-wide caps are never changed). On top, the
service refuses very elongated pictures and overlong videos. A refusal is an `UploadError`: 413 for an upload over
a cap (`LimitError`), 422 for a header that makes no sense.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bindkit.data import limits as data_limits
from bindkit.data.errors import ItemError
from bindkit.data.limits import LimitError
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

    def loader_limits(self) -> data_limits.Limits:
        """These caps as the loaders' `Limits`, for their header checks (the other loader caps keep defaults)."""
        return data_limits.Limits(
            max_file_bytes=self.max_upload_bytes, max_pixels=self.max_pixels,
            max_array_bytes=self.max_array_bytes, max_audio_seconds=self.max_seconds,
            min_sample_rate=self.min_sample_rate, max_sample_rate=self.max_sample_rate,
            max_imu_rows=self.max_csv_rows,
        )  # fmt: skip


def check_decoded(path: Path, name: str, limits: Limits) -> None:
    """Refuse an upload (saved at `path`, sent as `name`) whose header promises more than `limits` allow."""
    ext, lim = path.suffix.lower(), limits.loader_limits()
    with _as_upload_error(name):
        if ext in IMAGE_EXT:
            _check_image(path, limits, lim)
        elif ext == ".npy":
            data_limits.check_array_header(*data_limits.array_header(path), name="array", limits=lim)
        elif ext == ".npz":
            _check_npz(path, lim)
        elif ext in AUDIO_EXT:
            data_limits.check_audio(*_audio_header(path), limits=lim)
        elif ext in VIDEO_EXT:
            _check_video(path, limits, lim)
        elif ext == ".csv":
            with open(path, "rb") as f:
                rows = sum(1 for _ in f)
            data_limits.check_rows(rows - 1, limits=lim)  # - a header line


@contextlib.contextmanager
def _as_upload_error(name: str) -> Iterator[None]:
    """The loaders' refusals as HTTP errors naming the upload: 413 over a cap, 422 for a header that makes no sense."""
    try:
        yield
    except LimitError as e:
        raise UploadError(f"{name}: {e}", 413) from e
    except ItemError as e:
        raise UploadError(f"{name}: {e}", 422) from e


def _check_image(path: Path, limits: Limits, lim: data_limits.Limits) -> None:
    try:
        with open(path, "rb") as f, data_limits.open_picture(f, limits=lim) as img:  # reads the header only
            w, h = img.size
    except ItemError:
        raise
    except Exception as e:  # noqa: BLE001 - any header Pillow cannot read is a bad upload
        raise ItemError(f"not a readable image ({type(e).__name__})") from e
    _check_aspect(w, h, limits)


def _check_aspect(w: int, h: int, limits: Limits) -> None:
    if min(w, h) < 1 or max(w, h) > limits.max_aspect * min(w, h):
        raise LimitError(f"{w}x{h} pixels, more elongated than {limits.max_aspect:.0f}:1")


def _check_npz(path: Path, lim: data_limits.Limits) -> None:
    total = 0
    for member, shape, dtype in data_limits.array_headers(path):
        data_limits.check_array_header(shape, dtype, name=f"array {member!r}", limits=lim)
        total += math.prod(shape) * dtype.itemsize
    data_limits.check_array_bytes(total, "all arrays of the .npz together", lim)


def _audio_header(path: Path) -> tuple[int, float, int]:
    """(frames, sample rate, channels) from the header: libsndfile's, else PyAV's (m4a, some mp3)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        return int(info.frames), float(info.samplerate), int(info.channels)
    except Exception:  # noqa: BLE001 - formats libsndfile does not read: PyAV's header
        pass
    import av

    try:
        with av.open(str(path)) as c:
            stream: Any = next(s for s in c.streams if s.type == "audio")
            rate = float(stream.rate or 0)
            return round((c.duration or 0) / av.time_base * rate), rate, int(stream.channels or 1)
    except Exception as e:  # noqa: BLE001 - no audio stream, or nothing PyAV can open
        raise ItemError(f"not a readable audio file ({type(e).__name__})") from e


def _check_video(path: Path, limits: Limits, lim: data_limits.Limits) -> None:
    import av

    try:
        with av.open(str(path)) as c:
            streams: list[Any] = [s for s in c.streams if s.type == "video"]
            seconds = (c.duration or 0) / av.time_base
            sizes = [(s.codec_context.width or 0, s.codec_context.height or 0) for s in streams]
    except Exception as e:  # noqa: BLE001 - anything PyAV cannot open is a bad upload
        raise ItemError(f"not a readable video ({type(e).__name__})") from e
    if not streams:
        return  # a container with only sound: detected and loaded as audio, or refused by the loaders
    for w, h in sizes:
        data_limits.check_pixels(w, h, "video frame", limits=lim)
        _check_aspect(w, h, limits)
    # the loaders sample a few clips, so their caps have no duration of their own
    if seconds > limits.max_seconds:
        raise LimitError(f"{seconds:.0f} s long, more than the {limits.max_seconds:.0f} s allowed")
