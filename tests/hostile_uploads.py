"""Hostile uploads built in memory: decompression bombs, lying headers and garbage, as (file name, bytes).

Each is small on the wire and large (or impossible) once decoded; the service must answer each with a 4xx naming
the file, without decoding it. Built by hand from the formats' specifications (PNG chunks, JPEG SOF, RIFF/WAVE,
the .npy header, a ZIP local header around one raw deflate stream), so nothing large is ever allocated here.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png_header_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A PNG whose IHDR claims width x height RGB pixels, with one tiny IDAT (a few hundred bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + 3 * min(width, 4096)))  # the start of the first row only
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_strip(width: int = 60000) -> bytes:
    """A real, fully decodable 16-bit width x 1 PNG: few pixels, but resizing its short side to 224 makes billions."""
    buf = io.BytesIO()
    Image.fromarray(np.full((1, width), 30000, np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_header_bomb(side: int = 65000) -> bytes:
    """An 8x8 JPEG whose start-of-frame is patched to claim side x side pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


def npy_header_bomb(shape: tuple[int, ...] = (100000, 100000)) -> bytes:
    """A .npy whose header claims a float64 array of `shape`, followed by 100 bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 100


def npz_zero_bomb(shape: tuple[int, int] = (30000, 30000), name: str = "depth.npy") -> bytes:
    """A valid .npz (3.5 MB) holding a float32 zero array of `shape` (3.6 GB): one deflate stream of repeated
    fully-flushed blocks, so it is built without ever holding the array."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": shape})
    header, n = head.getvalue(), int(np.prod(shape)) * 4
    block = bytes(1 << 22)
    reps, rest = divmod(n, len(block))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    c.compress(block)
    c.flush(
        zlib.Z_FULL_FLUSH
    )  # the first zero block's bytes; after a full flush every such block is the same
    piece = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    data = first + piece * reps + c.compress(bytes(rest)) + c.flush()
    crc = zlib.crc32(header)
    for _ in range(reps):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(bytes(rest), crc)
    fname, usize = name.encode(), len(header) + n
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), usize, len(fname), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), usize,
                          len(fname), 0, 0, 0, 0, 0, 0) + fname  # fmt: skip
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(fname) + len(data), 0
    )
    return local + fname + data + central + end


def wav(rate: int = 16000, frames: int = 16000, claimed_bytes: int | None = None) -> bytes:
    """A 16-bit mono WAV of `frames` samples of a tone, with a header claiming `rate` Hz (and `claimed_bytes`)."""
    pcm = (np.sin(np.arange(frames) * 0.05) * 8000).astype("<i2").tobytes()
    size = len(pcm) if claimed_bytes is None else claimed_bytes
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + pcm
    return b"RIFF" + struct.pack("<I", min(len(body) - len(pcm) + size, 0xFFFFFFFF)) + body


def bombs() -> dict[str, bytes]:
    """Uploads that must be refused with 413 or 422 before they are decoded, by file name."""
    return {
        "huge.png": png_header_bomb(),
        "strip_thermal.png": png_strip(),
        "huge.jpg": jpeg_header_bomb(),
        "huge_depth.npy": npy_header_bomb(),
        "zeros_depth.npz": npz_zero_bomb(),
        "one_hz.wav": wav(rate=1),
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
