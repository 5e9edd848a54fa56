"""Resource bounds every loader checks *before* it allocates: what a file may make bindkit read, decode or build.

A hostile or broken file must fail with a clear reason instead of hanging or exhausting memory. So the loaders
read only regular files (never FIFOs, devices or sockets, and no `/dev/...` path by name), and check sizes taken
from headers before decoding: image and video-frame pixels (and the size of the short-side resize, which a
60000x1 picture would blow up to gigapixels), the decompressed bytes of `.npy`/`.npz` arrays (refusing pickled
object arrays), audio duration, sample count and sample rate, and IMU rows.

The caps live in one frozen `Limits`. `get_limits()` gives those in force; `set_limits(Limits(...))` or
`set_limits(max_pixels=...)` replaces them for the whole process (an entry point's choice), and
`limits_scope(...)` does so for a `with` block. Every `check_*` function also takes an explicit `limits=` (default:
those in force), so a caller with stricter caps of its own, such as the service, uses the same checks without
touching process-wide state. A refusal over a cap is a `LimitError` (too large); one that makes no sense (a pickle,
an implausible sample rate) is a plain `ItemError`. Pillow's decompression-bomb warning is replaced by an error at
`max_pixels`; Pillow's own error (over twice `Image.MAX_IMAGE_PIXELS`, ~179 M pixels) still applies on top, so a
cap above that needs `Image.MAX_IMAGE_PIXELS` raised too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import math
import os
import stat
import threading
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from bindkit.data.errors import ItemError

GiB = 1 << 30


class LimitError(ItemError):
    """An input over one of the `Limits` caps (as opposed to one that is malformed)."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one input item may cost; every field is checked before the allocation it bounds."""

    max_file_bytes: int = 2 * GiB  # a file read whole into memory (images, arrays, CSV, text)
    max_pixels: int = 100_000_000  # decoded pixels of an image or video frame, and of its short-side resize
    max_array_bytes: int = 1 * GiB  # decompressed bytes of one .npy / .npz array, from its header
    max_audio_seconds: float = 3600.0  # audio duration, from the header (and counted while decoding)
    max_audio_samples: int = 1 << 28  # frames x channels, decoded or after resampling (1 GiB as float32)
    min_sample_rate: int = 1000  # Hz; real recordings are 8 kHz to 384 kHz
    max_sample_rate: int = 768_000
    max_imu_rows: int = 5_000_000  # samples in one IMU series (about 3.5 h at 400 Hz)


_current = Limits()
_pil_lock = threading.Lock()  # warnings.catch_warnings is process-wide state: one Pillow open at a time


def get_limits() -> Limits:
    """The limits in force."""
    return _current


def set_limits(limits: Limits | None = None, **changes: Any) -> Limits:
    """Replace the limits for the whole process (`limits`, or the current ones with `changes`); returns the old."""
    global _current
    old = _current
    _current = dataclasses.replace(limits or _current, **changes) if changes else (limits or Limits())
    return old


@contextlib.contextmanager
def limits_scope(limits: Limits | None = None, **changes: Any) -> Iterator[Limits]:
    """`set_limits` for the duration of a `with` block (process-wide, not per thread)."""
    old = set_limits(limits, **changes)
    try:
        yield _current
    finally:
        set_limits(old)


# ---------------------------------------------------------------------------------------------------- files
def file_problem(path: str | Path) -> str | None:
    """Why `path` is not a readable regular file (a FIFO, device, socket, link loop, `/dev` path...), or None."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if p.is_symlink():
            return "broken symbolic link (its target does not exist)"
        return "file not found" if isinstance(e, FileNotFoundError) else f"unreadable ({e.strerror or e})"
    if _is_dev(p):
        return "a device path (/dev/...): not read"
    return _kind_problem(st.st_mode)


def _is_dev(p: Path) -> bool:
    return p.absolute().parts[1:2] == ("dev",) or os.path.realpath(p).startswith("/dev/")


def _kind_problem(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]  # fmt: skip
    name = next((n for test, n in kinds if test(mode)), "a special file")
    return f"{name}, not a regular file"


def check_file(path: str | Path) -> int:
    """Raise `ItemError` unless `path` is a non-empty regular file; returns its size in bytes."""
    if reason := file_problem(path):
        raise ItemError(reason)
    size = Path(path).stat().st_size
    if size == 0:
        raise ItemError("empty file (0 bytes)")
    return size


def read_file(path: str | Path) -> bytes:
    """The bytes of a regular file of at most `max_file_bytes`; opened non-blocking so a FIFO cannot hang us."""
    if reason := file_problem(path):
        raise ItemError(reason)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ItemError(f"unreadable file ({e.strerror or e})") from e
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)  # the file actually opened: it may have been swapped since the check
        if reason := _kind_problem(st.st_mode):
            raise ItemError(reason)
        check_bytes(st.st_size)
        try:
            return f.read()
        except OSError as e:
            raise ItemError(f"unreadable file ({e.strerror or e})") from e


def read_stream(f: IO[bytes]) -> bytes:
    """The rest of a binary file object, at most `max_file_bytes` of it."""
    cap = _current.max_file_bytes
    data = f.read(cap + 1)
    if isinstance(data, bytes):
        check_bytes(len(data))
    return data


def check_bytes(n: int, limits: Limits | None = None) -> None:
    """Refuse input over `max_file_bytes`."""
    cap = (limits or _current).max_file_bytes
    if n > cap:
        raise LimitError(f"input is {n} bytes, over the limit of {cap} (Limits.max_file_bytes)")


# ---------------------------------------------------------------------------------------------------- pixels
def check_pixels(w: int, h: int, what: str = "image", limits: Limits | None = None) -> None:
    """Refuse a `w` x `h` picture over `max_pixels`."""
    cap = (limits or _current).max_pixels
    if w * h > cap:
        raise LimitError(f"{what} is {w}x{h} = {w * h} pixels, over the limit of {cap} (Limits.max_pixels)")


def check_resize(w: int, h: int, size: int, limits: Limits | None = None) -> None:
    """Refuse a picture whose short side scaled to `size` would exceed `max_pixels` (extreme aspect ratios)."""
    short, long = min(w, h), max(w, h)
    if short <= 0:
        raise ItemError(f"picture has a zero side ({w}x{h})")
    scaled, cap = size * size * long / short, (limits or _current).max_pixels
    if scaled > cap:
        raise LimitError(
            f"picture of {w}x{h} would be {size}x{int(size * long / short)} = {scaled:.3g} pixels once its short "
            f"side is scaled to {size}, over the limit of {cap} (Limits.max_pixels)"
        )


def open_picture(data: bytes | IO[bytes], limits: Limits | None = None) -> Image.Image:
    """A lazily decoded PIL image whose header passed `max_pixels`: Pillow's bomb warning becomes our error."""
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with _pil_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our cap decides, just below
        try:
            img = Image.open(src)
        except Image.DecompressionBombError as e:  # over twice Pillow's own limit
            raise LimitError(f"decompression bomb refused ({e})") from e
    try:
        check_pixels(*img.size, limits=limits)
    except LimitError:
        img.close()
        raise
    return img


# ---------------------------------------------------------------------------------------------------- arrays
def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(f)
    return tuple(shape), dtype


def check_array_header(
    shape: tuple[int, ...], dtype: np.dtype, name: str = "array", limits: Limits | None = None
) -> None:
    """Refuse pickled object arrays and arrays whose data would exceed `max_array_bytes`."""
    if dtype.hasobject:
        raise ItemError(f"{name} holds Python objects (a pickle), which are never loaded")
    check_array_bytes(math.prod(shape) * dtype.itemsize, f"{name} of shape {shape} {dtype}", limits)


def check_array_bytes(nbytes: int, what: str = "array", limits: Limits | None = None) -> None:
    """Refuse `nbytes` of array data (one array, or all of a `.npz`) over `max_array_bytes`."""
    cap = (limits or _current).max_array_bytes
    if nbytes > cap:
        raise LimitError(
            f"{what} is {nbytes} bytes once loaded, over the limit of {cap} (Limits.max_array_bytes)"
        )


def array_headers(path: str | Path, max_members: int = 64) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """(member, shape, dtype) of every array of a `.npz` at `path`, from headers alone (at most `max_members`)."""
    try:
        with zipfile.ZipFile(path) as z:
            members = [i for i in z.infolist() if i.filename.endswith(".npy")]
            if len(members) > max_members:
                raise LimitError(f"{len(members)} arrays in one .npz, over the limit of {max_members}")
            out = []
            for info in members:
                with z.open(info) as f:  # decompresses only as far as the header
                    out.append((info.filename, *_npy_header(f)))
            return out
    except ItemError:
        raise
    except Exception as e:  # a broken zip directory, a cut or malformed member header
        raise ItemError(f"not a readable .npz archive ({type(e).__name__}: {e})") from e


def array_header(data: bytes | str | Path, key: str | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of a `.npy`, or of member `key` (default: the first) of a `.npz`, without loading data."""
    src: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as z:
                names = z.namelist()
                if not names:
                    raise ItemError("empty .npz archive")
                member = names[0] if key is None else next(n for n in names if n in (key, key + ".npy"))
                with z.open(member) as f:  # decompresses only as far as the header
                    return _npy_header(f)
        if isinstance(src, io.BytesIO):
            src.seek(0)
            return _npy_header(src)
        with open(src, "rb") as f:
            return _npy_header(f)
    except ItemError:
        raise
    except Exception as e:  # a bad magic string, a cut header, a broken zip directory
        raise ItemError(f"not a readable .npy/.npz array ({type(e).__name__}: {e})") from e


def load_array(data: bytes, pick: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Load a `.npy`, or one `.npz` member chosen by `pick(keys) -> (key, extra_keys)`, each header checked first.

    Returns (the array, {extra key: array}) so that e.g. IMU can fetch its `t` alongside.
    """
    try:
        if not data.startswith(b"PK"):
            check_array_header(*array_header(data))
            return np.load(io.BytesIO(data), allow_pickle=False), {}
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            key, extra = pick(list(npz.files))
            out = {}
            for k in (key, *extra):
                check_array_header(*array_header(data, k), name=f"array {k!r}")
                out[k] = npz[k]
            return out.pop(key), out
    except ItemError:
        raise
    except Exception as e:
        raise ItemError(f"unreadable .npy/.npz ({type(e).__name__}: {e})") from e


def check_values(a: np.ndarray, what: str) -> None:
    """Refuse complex, boolean and non-numeric arrays, and arrays without a single finite value."""
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ItemError(f"{what} must be integers or floats, got {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and a.size and not np.isfinite(a).any():
        raise ItemError(f"{what} has no finite value (all NaN or infinite)")


# ---------------------------------------------------------------------------------------------------- audio, IMU
def check_audio(
    frames: int, rate: float, channels: int, target_rate: int | None = None, limits: Limits | None = None
) -> None:
    """Refuse an implausible sample rate, or audio over the duration or sample caps (also once resampled)."""
    lim = limits or _current
    if not lim.min_sample_rate <= rate <= lim.max_sample_rate:
        raise ItemError(
            f"sample rate {rate} Hz is outside the plausible range {lim.min_sample_rate}-{lim.max_sample_rate} Hz"
        )
    seconds = frames / rate
    if seconds > lim.max_audio_seconds:
        raise LimitError(f"audio is {seconds:.0f} s long, over the limit of {lim.max_audio_seconds:.0f} s "
                        "(Limits.max_audio_seconds)")  # fmt: skip
    samples = max(frames, math.ceil(seconds * (target_rate or rate))) * max(channels, 1)
    if samples > lim.max_audio_samples:
        raise LimitError(f"audio needs {samples} samples ({channels} channel(s)), over the limit of "
                        f"{lim.max_audio_samples} (Limits.max_audio_samples)")  # fmt: skip


def check_rows(rows: int, what: str = "IMU series", limits: Limits | None = None) -> None:
    """Refuse an IMU series of more than `max_imu_rows` samples."""
    cap = (limits or _current).max_imu_rows
    if rows > cap:
        raise LimitError(f"{what} has {rows} rows, over the limit of {cap} (Limits.max_imu_rows)")
