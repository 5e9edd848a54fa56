"""Uploaded files: limited in size and type, checked by their leading bytes, written only into a temporary folder.

An upload is accepted only when its extension is one the store can embed and its first bytes match that format
(a `.png` must start with the PNG signature, a `.wav` with RIFF/WAVE, a `.csv` or `.txt` must be UTF-8 text, ...).
It is saved under a fresh `tempfile.mkdtemp` folder with a sanitised name, handed to the loaders (which decode it
as data: numpy files are read with `allow_pickle=False`), and removed after the request. Nothing is ever executed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bindkit.store.detect import candidates

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_RIFF = lambda kind: lambda b: b[:4] == b"RIFF" and b[8:12] == kind  # noqa: E731
_ISO = lambda b: b[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")  # noqa: E731
MAGIC = {
    ".png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    ".jpg": lambda b: b.startswith(b"\xff\xd8\xff"),
    ".jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
    ".gif": lambda b: b[:6] in (b"GIF87a", b"GIF89a"),
    ".bmp": lambda b: b.startswith(b"BM"),
    ".webp": _RIFF(b"WEBP"),
    ".tif": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
    ".tiff": lambda b: b[:4] in (b"II*\x00", b"MM\x00*"),
    ".wav": _RIFF(b"WAVE"),
    ".flac": lambda b: b.startswith(b"fLaC"),
    ".ogg": lambda b: b.startswith(b"OggS"),
    ".opus": lambda b: b.startswith(b"OggS"),
    ".mp3": lambda b: b.startswith(b"ID3") or (len(b) > 1 and b[0] == 0xFF and b[1] & 0xE0 == 0xE0),
    ".m4a": _ISO,
    ".mp4": _ISO,
    ".m4v": _ISO,
    ".mov": _ISO,
    ".avi": _RIFF(b"AVI "),
    ".mkv": lambda b: b.startswith(b"\x1a\x45\xdf\xa3"),
    ".webm": lambda b: b.startswith(b"\x1a\x45\xdf\xa3"),
    ".npy": lambda b: b.startswith(b"\x93NUMPY"),
    ".npz": lambda b: b.startswith(b"PK\x03\x04"),
}
TEXT_EXT = (".csv", ".txt")
ALLOWED_EXT = tuple(sorted(set(MAGIC) | set(TEXT_EXT)))
assert set(ALLOWED_EXT) <= set(candidates())


class UploadError(ValueError):
    """An upload that is refused; `status` is the HTTP status to answer with (400, 413 or 415)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_name(filename: str | None) -> str:
    """A harmless file name keeping the extension and up to 60 word characters of the stem (for folder hints)."""
    name = Path(filename or "upload").name
    ext = Path(name).suffix.lower()
    if ext not in ALLOWED_EXT:
        raise UploadError(
            f"file type {ext or '(none)'!r} not accepted; allowed: {' '.join(ALLOWED_EXT)}", 415
        )
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:60].strip("_") or "upload"
    return stem + ext


def check_content(ext: str, head: bytes) -> None:
    """Refuse content that does not look like its extension's format."""
    if ext in TEXT_EXT:
        if b"\x00" in head:
            raise UploadError(f"a {ext} upload must be text, found binary data", 415)
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start < len(head) - 4:  # a multi-byte character cut at the end of the sample is fine
                raise UploadError(f"a {ext} upload must be UTF-8 text", 415) from e
        return
    if not MAGIC[ext](head):
        raise UploadError(f"content does not look like a {ext} file", 415)


def read_limited(stream: Any, max_bytes: int, chunk: int = 1 << 20) -> bytes:
    """Read a file object up to `max_bytes`; refuse anything longer (413) or empty (400)."""
    parts, n = [], 0
    while block := stream.read(chunk):
        n += len(block)
        if n > max_bytes:
            raise UploadError(f"upload larger than the {max_bytes // (1024 * 1024)} MiB limit", 413)
        parts.append(block)
    if n == 0:
        raise UploadError("empty upload")
    return b"".join(parts)


@contextmanager
def saved_upload(filename: str | None, data: bytes) -> Iterator[Path]:
    """Check an upload and write it into a fresh temporary folder, removed on exit; yields the file's path."""
    name = safe_name(filename)
    check_content(Path(name).suffix, data[:4096])
    folder = Path(tempfile.mkdtemp(prefix="bindkit-upload-"))
    try:
        path = folder / name
        path.write_bytes(data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
