"""Hostile uploads built in memory: decompression bombs, lying headers and garbage, as (file name, bytes).

Each is small on the wire and large (or impossible) once decoded; the service must answer each with a 4xx naming
the file, without decoding it. The bombs come from the corpus's builders (`hostile_corpus.py`), which write the
formats' headers by hand, so nothing large is ever allocated here.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hostile_corpus import jpeg_with_size, npy_header_only, npz_bomb, png_header, wav_header


def png_strip(width: int = 60000) -> bytes:
    """A real, fully decodable 16-bit width x 1 PNG: few pixels, but resizing its short side to 224 makes billions."""
    buf = io.BytesIO()
    Image.fromarray(np.full((1, width), 30000, np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def _small_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def bombs() -> dict[str, bytes]:
    """Uploads that must be refused with 413 or 422 before they are decoded, by file name."""
    return {
        "huge.png": png_header(60000, 60000, mode=2),  # RGB
        "strip_thermal.png": png_strip(),
        "huge.jpg": jpeg_with_size(_small_jpeg(), 65000, 65000),
        "huge_depth.npy": npy_header_only((100000, 100000)),
        "zeros_depth.npz": npz_bomb(),
        "one_hz.wav": wav_header(1, data=bytes(32000)),
    }


def garbage() -> dict[str, bytes]:
    """Uploads with a correct signature and nonsense after it: refused with a 4xx naming the file."""
    rng = np.random.default_rng(0)
    junk = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    return {
        "noise.png": b"\x89PNG\r\n\x1a\n" + junk,
        "noise.jpg": b"\xff\xd8\xff" + junk,
        "noise.wav": b"RIFF\0\0\0\0WAVE" + junk,
        "noise.mp4": b"\0\0\0\x18ftypisom" + junk,
        "noise.npy": b"\x93NUMPY" + junk,
        "noise.npz": b"PK\x03\x04" + junk,
        "pickle_depth.npy": _pickle_npy(),
        "empty_depth.npy": _npy(np.zeros((0, 0), np.float32)),
        "nan.csv": b"t,ax,ay,az,gx,gy,gz\n" + b"nan,nan,nan,nan,nan,nan,nan\n" * 3,
        "half.png": _png(np.zeros((64, 64, 3), np.uint8) + 90)[:80],
    }


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _pickle_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()
