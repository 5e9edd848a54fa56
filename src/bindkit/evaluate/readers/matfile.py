"""A small reader for MATLAB v5/v7 .mat files holding strings: cell arrays of char arrays, possibly in structs.

Enough for SUN RGB-D's `allsplit.mat` (`alltrain`, `alltest`: cell arrays of sample paths) without scipy. Numeric
arrays are skipped. v7.3 files are HDF5 and are not read here.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

MI_INT8, MI_UINT8, MI_INT32, MI_UINT32, MI_MATRIX, MI_COMPRESSED = 1, 2, 5, 6, 14, 15
MI_UINT16, MI_UTF8, MI_UTF16 = 4, 16, 17
MX_CELL, MX_STRUCT, MX_CHAR = 1, 2, 4
_INT_FORMATS = {MI_INT8: "b", MI_UINT8: "B", 3: "h", MI_UINT16: "H", MI_INT32: "i", MI_UINT32: "I"}


def _elements(buf: bytes, pos: int = 0, end: int | None = None):
    """Yield (type, payload) of the data elements in buf[pos:end] (small and padded formats)."""
    end = len(buf) if end is None else end
    while pos + 8 <= end:
        first, second = struct.unpack_from("<II", buf, pos)
        if first >> 16:  # small element: 2-byte size, 2-byte type, data in the tag's second word
            typ, n = first & 0xFFFF, first >> 16
            yield typ, buf[pos + 4 : pos + 4 + n]
            pos += 8
            continue
        typ, n = first, second
        yield typ, buf[pos + 8 : pos + 8 + n]
        pos += 8 + (n if typ == MI_COMPRESSED else (n + 7) // 8 * 8)


def _ints(typ: int, payload: bytes) -> list[int]:
    fmt = _INT_FORMATS.get(typ)
    if fmt is None:
        raise ValueError(f"expected an integer data element, got type {typ}")
    return list(struct.unpack(f"<{len(payload) // struct.calcsize(fmt)}{fmt}", payload))


def _chars(typ: int, payload: bytes, dims: list[int]) -> str | list[str]:
    if typ == MI_UTF8 or typ in (MI_INT8, MI_UINT8):
        codes = list(payload.decode("utf-8"))
    elif typ in (MI_UINT16, MI_UTF16):
        codes = [chr(c) for c in _ints(MI_UINT16, payload)]
    else:
        raise ValueError(f"unsupported char data type {typ}")
    rows = dims[0] if dims else 1
    if rows <= 1:
        return "".join(codes)
    cols = len(codes) // rows  # column-major: row r holds codes r, r + rows, ...
    return ["".join(codes[r + rows * c] for c in range(cols)) for r in range(rows)]


def _matrix(payload: bytes) -> tuple[str, Any]:
    """(name, value) of one miMATRIX: strings, lists (cells), dicts (structs), None for anything else."""
    parts = _elements(payload)
    flags = _ints(*next(parts))
    dims = _ints(*next(parts))
    name = next(parts)[1].decode("latin-1")
    cls = flags[0] & 0xFF
    if cls == MX_CHAR:
        data = next(parts, (MI_UTF8, b""))
        return name, _chars(data[0], data[1], dims)
    if cls == MX_CELL:
        return name, [_matrix(p)[1] for t, p in parts if t == MI_MATRIX]
    if cls == MX_STRUCT:
        width = _ints(*next(parts))[0]
        raw = next(parts)[1]
        fields = [raw[i : i + width].split(b"\0")[0].decode("latin-1") for i in range(0, len(raw), width)]
        values = [_matrix(p)[1] for t, p in parts if t == MI_MATRIX]
        if len(values) == len(fields):  # a 1x1 struct
            return name, dict(zip(fields, values, strict=True))
        return name, [
            dict(zip(fields, values[i : i + len(fields)], strict=True))
            for i in range(0, len(values), len(fields))
        ]
    return name, None


def read_mat_strings(path: str | Path) -> dict[str, Any]:
    """Top-level variables of a v5/v7 .mat file: str, list (cell arrays), dict (structs); numeric ones as None."""
    buf = Path(path).read_bytes()
    if buf[:8] == b"\x89HDF\r\n\x1a\n" or buf[512:520] == b"\x89HDF\r\n\x1a\n":
        raise ValueError(f"{path} is a MATLAB v7.3 (HDF5) file: read it with h5py")
    if len(buf) < 128 or buf[126:128] != b"IM":
        raise ValueError(f"{path} is not a little-endian MATLAB v5/v7 .mat file")
    out = {}
    for typ, payload in _elements(buf, 128):
        if typ == MI_COMPRESSED:
            typ, payload = next(_elements(zlib.decompress(payload)))
        if typ == MI_MATRIX:
            name, value = _matrix(payload)
            out[name] = value
    return out
