"""A corpus of hostile input files, each with its expected outcome, for the loaders, `bindkit embed` and the service.

`build_corpus(root)` writes over 200 files under `root/<folder>/` (folders named after modalities, so `embed`
detects them by their folder, plus `misc/`, where detection must look at the content) and returns one `Case` per
item: zero-length, random, non-UTF-8 and truncated files of every extension, files with the wrong extension,
decompression bombs (PNG/BMP/GIF/JPEG headers of huge or extreme sizes, a ~3.5 MB `.npz` of 30000x30000 float32
zeros, `.npy` headers of gigabytes), audio headers with absurd rates, channels, lengths or lies, NaN/inf/complex/
boolean/pickled arrays, bad IMU times, text shown as video, FIFOs, a socket, `/dev` paths, symbolic links out of the
tree and in loops, and good files of every modality as controls. Bombs are crafted from headers, so the whole
corpus takes about a second to write and ~20 MB of disk.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LOADERS = ("image", "video", "audio", "depth", "thermal", "imu", "text")
ALL = frozenset(LOADERS)
NONE: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Case:
    """One corpus item and what must happen to it.

    A bad item must be refused, with a non-empty reason naming it, by every loader outside `may_load`; the reason
    given by the loaders in `main` must match the regex `reason`. A good item must be accepted by `must_load`.
    `embed` is what `bindkit embed` of the tree must do: "fail" (listed as failed or skipped, with a reason),
    "ok" (embedded), or "any".
    """

    path: Path
    what: str
    bad: bool
    may_load: frozenset[str] = NONE
    must_load: frozenset[str] = NONE
    main: frozenset[str] = NONE
    reason: str = ""
    embed: str = "fail"
    in_tree: bool = True  # under `root`, so part of the tree given to `bindkit embed`


# ---------------------------------------------------------------------------------------------------- good files
def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _image_bytes(fmt: str, rng: np.random.Generator) -> bytes:
    x = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, fmt)
    return buf.getvalue()


def _wav_bytes(
    seconds: float = 1.0, rate: int = 16000, fmt: str = "WAV", subtype: str | None = None
) -> bytes:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _video_bytes(fmt: str, codec: str, rng: np.random.Generator, frames: int = 12) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=6)
        stream.width, stream.height = 48, 32
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for _ in range(frames):
            img = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return buf.getvalue()


def _npy(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _imu_csv(t: np.ndarray, x: np.ndarray) -> bytes:
    rows = ["t,ax,ay,az,gx,gy,gz"] + [
        ",".join(repr(float(v)) for v in (ti, *r)) for ti, r in zip(t, x, strict=True)
    ]
    return ("\n".join(rows) + "\n").encode()


def good_files(rng: np.random.Generator) -> dict[str, tuple[str, bytes, frozenset[str]]]:
    """name -> (folder, bytes, loaders that must accept it)."""
    imu = rng.normal(0, 1, (500, 6))
    depth16 = _png(Image.fromarray(rng.integers(500, 4000, (40, 56)).astype(np.uint16)))
    return {
        **{f"good.{e}": ("image", _image_bytes(f, rng), frozenset({"image"}))
           for e, f in (("png", "PNG"), ("jpg", "JPEG"), ("gif", "GIF"), ("bmp", "BMP"), ("webp", "WEBP"),
                        ("tif", "TIFF"))},
        "good_depth.png": ("depth", depth16, frozenset({"depth", "thermal"})),
        "good_depth.npy": ("depth", _npy(rng.uniform(0.5, 4, (40, 56)).astype(np.float32)), frozenset({"depth"})),
        "good_depth.npz": ("depth", _npz(depth=rng.uniform(0.5, 4, (40, 56))), frozenset({"depth"})),
        "good_thermal.png": ("thermal", _png(Image.fromarray(rng.integers(0, 256, (40, 56), dtype=np.uint8))),
                             frozenset({"thermal", "image"})),
        "good.wav": ("audio", _wav_bytes(), frozenset({"audio"})),
        "good.flac": ("audio", _wav_bytes(fmt="FLAC"), frozenset({"audio"})),
        "good.ogg": ("audio", _wav_bytes(fmt="OGG", subtype="VORBIS"), frozenset({"audio"})),
        "good.mp4": ("video", _video_bytes("mp4", "mpeg4", rng), frozenset({"video"})),
        "good.mkv": ("video", _video_bytes("matroska", "mpeg4", rng), frozenset({"video"})),
        "good.avi": ("video", _video_bytes("avi", "mjpeg", rng), frozenset({"video"})),
        "good.csv": ("imu", _imu_csv(np.arange(500) / 100, imu), frozenset({"imu", "text"})),
        "good_imu.npy": ("imu", _npy(imu.astype(np.float32)), frozenset()),  # needs a sample rate
        "good_imu.npz": ("imu", _npz(imu=imu, t=np.arange(500) / 100), frozenset({"imu"})),
        "good.txt": ("text", b"a dog barking in the rain\n", frozenset({"text"})),
        "good_unicode.txt": ("text", "caf\u00e9 \u2603 \u65e5\u672c".encode(), frozenset({"text"})),
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------- bombs
def png_header(w: int, h: int, mode: int = 0, depth: int = 8, rows: int = 1) -> bytes:
    """A PNG whose IHDR says w x h (grey 8-bit by default) and whose IDAT holds only the first `rows` rows."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row_bytes = 1 + w * max(depth // 8, 1) * (3 if mode == 2 else 1)
    idat = zlib.compress(bytes(row_bytes * rows), 9)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _bmp_header(w: int, h: int) -> bytes:
    """A 24-bit BMP header claiming w x h, with 64 bytes of pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, 54) + info + bytes(64)


def _gif_header(w: int, h: int) -> bytes:
    """A GIF whose screen and only frame are w x h, with a tiny (cut) LZW stream."""
    screen = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + bytes(6)  # 2-colour global palette
    frame = b"," + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x4c\x01\x00;"
    return screen + frame


def jpeg_with_size(jpeg: bytes, w: int, h: int) -> bytes:
    """A JPEG whose SOF0 frame header is patched to say w x h (the scan data stays that of a small picture)."""
    at = jpeg.index(b"\xff\xc0") + 5  # marker, length (2), precision (1), then height, width
    return jpeg[:at] + struct.pack(">HH", h, w) + jpeg[at + 4 :]


def _crc32_zeros(n: int, crc: int = 0) -> int:
    """zlib.crc32 of `n` zero bytes continuing from `crc`, in O(log n): the register update is linear over GF(2)."""

    def apply(mat: list[int], v: int) -> int:
        out, i = 0, 0
        while v:
            if v & 1:
                out ^= mat[i]
            v, i = v >> 1, i + 1
        return out

    one = [~zlib.crc32(b"\0", ~(1 << i) & 0xFFFFFFFF) & 0xFFFFFFFF for i in range(32)]  # one zero byte
    v = ~crc & 0xFFFFFFFF
    while n:
        if n & 1:
            v = apply(one, v)
        one, n = [apply(one, c) for c in one], n >> 1
    return ~v & 0xFFFFFFFF


def npz_bomb(shape: tuple[int, int] = (30000, 30000), name: str = "depth.npy") -> bytes:
    """A valid `.npz` of one float32 array of zeros of `shape` (3.6 GB for the default), about 1/1000 of that size.

    The deflate stream is built from one compressed MiB of zeros repeated: after a full flush the compressor's
    state is the same, so every further MiB compresses to the same bytes; the CRC is computed in closed form.
    """
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    head = header.getvalue()
    nbytes = int(np.prod(shape)) * 4
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = 1 << 20
    first = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(bytes(mib)) + co.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(nbytes, mib)
    last = co.compress(bytes(rest)) + co.flush()
    data = first + block * whole + last
    size, crc = len(head) + nbytes, _crc32_zeros(nbytes, zlib.crc32(head))
    fname = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(fname), 0)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        8,
        0,
        0x21,
        crc,
        len(data),
        size,
        len(fname),
        0,
        0,
        0,
        0,
        0,
        0,
    )
    offset = len(local) + len(fname) + len(data)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central) + len(fname), offset, 0)
    return local + fname + data + central + fname + end


def npy_header_only(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A `.npy` whose header says `shape` but that holds no data (a header bomb)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + bytes(64)


# ---------------------------------------------------------------------------------------------------- audio headers
def wav_header(
    rate: int, channels: int = 1, bits: int = 16, data_len: int | None = None, data: bytes = b""
) -> bytes:
    """A PCM WAV with the given header fields; `data_len` is what the header claims, `data` what follows."""
    claimed = len(data) if data_len is None else data_len
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    riff = min(36 + claimed, 0xFFFFFFFF)
    return b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + \
        struct.pack("<I", claimed) + data  # fmt: skip


# ---------------------------------------------------------------------------------------------------- the corpus
class _Builder:
    def __init__(self, root: Path):
        self.root, self.cases = root, []

    def add(self, folder: str, name: str, data: bytes | None, what: str, bad: bool = True, **kw) -> Path:
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        kw = {k: frozenset(v) if isinstance(v, (set, tuple)) else v for k, v in kw.items()}
        self.cases.append(Case(path, what, bad, **kw))
        return path


EXTS = {  # extension -> the folder its modality lives in
    "png": "image", "jpg": "image", "gif": "image", "bmp": "image", "webp": "image", "tif": "image",
    "wav": "audio", "flac": "audio", "ogg": "audio", "mp3": "audio",
    "mp4": "video", "mkv": "video", "avi": "video", "webm": "video",
    "npy": "depth", "npz": "depth", "csv": "imu", "txt": "text",
}  # fmt: skip


def _garbage(b: _Builder, rng: np.random.Generator) -> None:
    """Zero-length, random, non-UTF-8 and NUL-filled files of every extension."""
    latin = "Caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve fa\xe7ade \xa9\xae\xb1\n".encode("latin-1") * 40
    for ext, folder in EXTS.items():
        b.add(folder, f"empty.{ext}", b"", "zero-length file", main=ALL, reason="empty")
        b.add(folder, f"random.{ext}", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(), "random bytes")
        b.add(folder, f"latin1.{ext}", latin, "non-UTF-8 text")
        b.add(folder, f"nul.{ext}", bytes(2048), "2 KiB of NUL bytes")


def _truncated(b: _Builder, goods: dict[str, tuple[str, bytes, frozenset[str]]]) -> None:
    """Good files cut to 60 % and to 15 % of their length."""
    for name, (folder, data, must) in goods.items():
        if name.endswith((".txt", ".csv", "_imu.npy")):  # a cut text or CSV can still be a valid one
            continue
        stem, ext = name.rsplit(".", 1)
        for frac in (0.6, 0.15):
            b.add(folder, f"cut{int(frac * 100)}_{stem}.{ext}", data[: int(len(data) * frac)], f"{name} truncated "
                  f"to {int(frac * 100)} %", main=must - {"text"}, reason="truncat|corrupt|cannot|not a|unreadable|"
                  "no .*frames|broken|EOF|incomplete")  # fmt: skip


def _wrong_extension(b: _Builder, goods: dict[str, tuple[str, bytes, frozenset[str]]]) -> None:
    """Good content under another modality's extension: only the content's own loaders may accept it."""
    swaps = [("good.png", ("wav", "mp4", "npy", "csv", "txt")), ("good.wav", ("png", "mp4", "npy", "csv")),
             ("good_depth.npy", ("png", "wav", "csv", "mp4")), ("good.mp4", ("png", "wav", "npy")),
             ("good.csv", ("npy", "png", "wav"))]  # fmt: skip
    for n, (src, exts) in enumerate(swaps):
        folder, data, must = goods[src]
        may = (
            must
            | ({"audio"} if src.endswith(".mp4") else set())
            | ({"thermal"} if src == "good.png" else set())
        )
        for ext in exts:
            b.add(EXTS[ext], f"wrongext{n}.{ext}", data, f"{src} named .{ext}", may_load=may,
                  embed="any" if ext in ("txt", "mp4") or src == "good.csv" else "fail")  # fmt: skip


def _cut_frame(avi: bytes, frame: int = 3) -> bytes:
    """An MJPEG AVI whose `frame`-th JPEG loses its second half and end marker (zeros; sizes unchanged)."""
    data = bytearray(avi)
    start = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xd8"][frame]
    end = data.index(b"\xff\xd9", start)
    mid = start + (end - start) // 2
    data[mid : end + 2] = bytes(end + 2 - mid)
    return bytes(data)


def _bombs(b: _Builder, jpeg: bytes) -> None:
    """Pictures whose headers (or short-side resize) exceed the pixel cap, and arrays of gigabytes."""
    pictures = {
        "png_60000x1.png": (png_header(60000, 1), "PNG 60000x1: 3e9 pixels once resized to 224"),
        "png_1x60000.png": (png_header(1, 60000), "PNG 1x60000"),
        "png_100k_square.png": (png_header(100000, 100000), "PNG header 100000x100000"),
        "png_12000_square.png": (
            png_header(12000, 12000),
            "PNG header 12000x12000 (Pillow's warning range)",
        ),
        "png16_20000x20000.png": (png_header(20000, 20000, depth=16), "16-bit PNG header 20000x20000"),
        "bmp_50000_square.bmp": (_bmp_header(50000, 50000), "BMP header 50000x50000"),
        "gif_65535_square.gif": (_gif_header(65535, 65535), "GIF header 65535x65535"),
        "jpeg_65000_square.jpg": (jpeg_with_size(jpeg, 65000, 65000), "JPEG SOF 65000x65000"),
    }
    for folder in ("image", "depth", "thermal", "misc"):
        for name, (data, what) in pictures.items():
            b.add(folder, name, data, what, main={"image", "thermal"}, reason="limit|bomb|exceeds|truncat")
    bomb = npz_bomb()
    for folder in ("depth", "imu", "misc"):
        b.add(folder, "npz_30000_square.npz", bomb, "npz of 30000x30000 float32 zeros (3.6 GB)",
              main={"depth", "imu"}, reason="limit")  # fmt: skip
        b.add(folder, "npy_header_40000_square.npy", npy_header_only((40000, 40000)), ".npy header of 12.8 GB",
              main={"depth", "imu"}, reason="limit")  # fmt: skip
    b.add("imu", "npy_header_rows.npy", npy_header_only((10_000_000, 6), "<f4"), ".npy of 10M IMU rows (240 MB)",
          main={"imu"}, reason="rows")  # fmt: skip
    b.add("imu", "many_rows.csv", b"t,ax,ay,az,gx,gy,gz\n" + b"\n" * 5_100_000, "CSV of 5.1M lines",
          main={"imu"}, reason="rows", may_load={"text"})  # fmt: skip


def _audio_headers(b: _Builder) -> None:
    second = bytes(32000)
    cases = {
        "rate_1hz.wav": (
            wav_header(1, data=bytes(64000)),
            "WAV at 1 Hz (0.8 GB once resampled)",
            "sample rate",
        ),
        "rate_4ghz.wav": (wav_header(4_000_000_000, data=second), "WAV at 4 GHz", "sample rate|SF_INFO"),
        "channels_65535.wav": (
            wav_header(16000, 65535, data=bytes(65535 * 2 * 4)),
            "WAV of 65535 channels",
            "",
        ),
        "claims_2gb.wav": (
            wav_header(16000, data_len=0x7FFFFF00, data=second),
            "WAV header says 2 GB, holds 1 s",
            "truncat",
        ),
        "claims_4gb.wav": (
            wav_header(16000, data_len=0xFFFFFFF0, data=second),
            "WAV header says 4 GB, holds 1 s",
            "truncat",
        ),
        "claims_3s.wav": (
            wav_header(16000, data_len=96000, data=second),
            "WAV header says 3 s, holds 1 s",
            "truncat",
        ),
        "long_3700s.wav": (
            wav_header(1000, bits=8, data=b"\x80" * 3_700_000),
            "WAV of 3700 s at 1 kHz",
            "limit",
        ),
        "no_data.wav": (wav_header(16000, data=b""), "WAV header without samples", ""),
    }
    for name, (data, what, reason) in cases.items():
        # a size of ~4 GiB is the placeholder of writers that stream (FFmpeg to a pipe): read as "until the end"
        may = {"audio"} if name == "claims_4gb.wav" else set()
        b.add("audio", name, data, what, main={"audio"} - may, reason=reason, may_load=may,
              embed="any" if may else "fail")  # fmt: skip


def _arrays(b: _Builder) -> None:
    nan = np.full((40, 56), np.nan, np.float32)
    arrays = {
        "all_nan": (nan, "finite"), "all_inf": (np.full((40, 56), np.inf), "finite"),
        "nan_and_inf": (np.where(np.eye(40, 56) > 0, np.inf, np.nan), "finite"),
        "complex": (np.ones((40, 56), np.complex64), "complex"), "bool": (np.ones((40, 56), bool), "bool"),
        "scalar": (np.float32(1.0), ""), "empty_rows": (np.zeros((0, 56), np.float32), ""),
        "3d": (np.ones((4, 40, 56), np.float32), ""), "strings": (np.array([["a"] * 6] * 10), ""),
    }  # fmt: skip
    for name, (a, reason) in arrays.items():
        b.add(
            "depth", f"{name}.npy", _npy(np.asarray(a)), f"depth .npy: {name}", main={"depth"}, reason=reason
        )
        b.add(
            "depth",
            f"{name}.npz",
            _npz(depth=np.asarray(a)),
            f"depth .npz: {name}",
            main={"depth"},
            reason=reason,
        )
    imu = {"all_nan": (np.full((500, 6), np.nan), "finite"), "complex": (np.ones((500, 6), complex), "complex"),
           "bool": (np.ones((500, 6), bool), "bool")}  # fmt: skip
    for name, (a, reason) in imu.items():
        t = np.arange(500) / 100
        b.add("imu", f"imu_{name}.npz", _npz(imu=a, t=t), f"IMU .npz: {name}", main={"imu"}, reason=reason)
    for ext in ("npy", "npz"):  # in misc/, detection must read them: an empty one once aborted `embed`
        b.add("misc", f"empty.{ext}", b"", f"zero-length .{ext} where detection reads the content", main=ALL,
              reason="empty")  # fmt: skip
    pickled = np.array([{"a": 1}, None], dtype=object)
    for folder in ("depth", "imu", "misc"):
        b.add(folder, "pickle.npy", _npy(pickled, allow_pickle=True), "pickled object .npy", main={"depth", "imu"},
              reason="pickle|object")  # fmt: skip
    b.add("depth", "pickle.npz", _npz(depth=pickled), "pickled object array in .npz", main={"depth"},
          reason="pickle|object")  # fmt: skip
    f = Image.fromarray(np.full((40, 56), np.nan, np.float32), mode="F")
    buf = io.BytesIO()
    f.save(buf, "TIFF")
    b.add("thermal", "nan_float.tif", buf.getvalue(), "float TIFF of NaN", main={"thermal", "depth"},
          reason="NaN|finite")  # fmt: skip


def _imu_csvs(b: _Builder) -> None:
    x = np.random.default_rng(1).normal(0, 1, (200, 6))
    t = np.arange(200) / 100
    cases = {
        "times_1e300.csv": (_imu_csv(1e300 + t * 1e290, x), "times of 1e300 s", "time"),
        "times_inf.csv": (_imu_csv(np.where(t > 1, np.inf, t), x), "infinite times", "finite"),
        "times_all_nan.csv": (_imu_csv(np.full(200, np.nan), x), "no valid time", ""),
        "times_equal.csv": (_imu_csv(np.zeros(200), x), "all times equal", "must increase"),
        "times_reversed.csv": (_imu_csv(t[::-1].copy(), x), "times running backwards", "must increase"),
        "times_repeated.csv": (_imu_csv(np.repeat(t[::2], 2), x), "every time stamp twice", "must increase"),
        "values_nan.csv": (_imu_csv(t, np.full((200, 6), np.nan)), "all values NaN", "finite"),
        "one_row.csv": (_imu_csv(t[:1], x[:1]), "a single row", ""),
        "header_only.csv": (b"t,ax,ay,az,gx,gy,gz\n", "a header without rows", ""),
        "ragged.csv": (b"t,ax,ay,az,gx,gy,gz\n0,1,2,3\n1,2,3,4,5,6,7,8,9\n", "ragged rows", ""),
        "words.csv": (b"t,ax,ay,az,gx,gy,gz\n" + b"a,b,c,d,e,f,g\n" * 10, "non-numeric cells", ""),
        "no_channels.csv": (b"t,x,y\n" + b"0,1,2\n1,2,3\n", "missing channels", ""),
    }
    for name, (data, what, reason) in cases.items():
        b.add(
            "imu",
            name,
            data,
            f"IMU CSV: {what}",
            main={"imu"},
            reason=reason,
            may_load={"text"},
            embed="fail",
        )


def _videos_and_text(b: _Builder) -> None:
    text = b"".join(f"line {i}: the quick brown fox jumps over the lazy dog\n".encode() for i in range(20000))
    for ext in ("mp4", "mkv", "avi", "webm", "mov", "txt", "nfo"):  # FFmpeg's tty demuxer takes .txt and .nfo
        b.add(
            "video",
            f"text_1mb.{ext}",
            text,
            "1 MB text file (FFmpeg's tty demuxer)",
            main={"video"},
            reason="not a video|cannot decode",
            may_load={"text"},
            embed="any" if ext == "txt" else "fail",
        )
    b.add("text", "big.txt", text, "1 MB text", bad=False, must_load={"text"}, may_load={"text"}, embed="ok")
    b.add("text", "blank.txt", b"   \n\t\n", "whitespace only", main={"text"}, reason="empty")
    b.add("text", "bad_utf8.txt", b"valid start \xff\xfe\xc0\x80 invalid", "invalid UTF-8", main={"text"})
    b.add("text", "utf16.txt", "hello".encode("utf-16"), "UTF-16 with BOM (not UTF-8)", main={"text"})


def _specials(b: _Builder) -> None:
    """FIFOs, a socket, `/dev` paths, links out of the tree, link loops, a dangling link, a directory."""
    for folder in ("image", "depth", "thermal", "imu", "audio", "video", "text", "misc"):
        ext = {"misc": "png", "depth": "npy", "imu": "csv", "text": "txt", "audio": "wav", "video": "mp4"}
        p = b.add(folder, f"fifo.{ext.get(folder, 'png')}", None, "a FIFO", main=ALL, reason="FIFO")
        os.mkfifo(p)
    sock = b.root / "misc" / "sock.png"
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(sock))
        s.close()
        b.cases.append(Case(sock, "a UNIX socket", True, main=ALL, reason="socket"))
    except OSError:  # a path too long for AF_UNIX: leave the case out
        pass
    for dev in ("/dev/zero", "/dev/urandom", "/dev/null"):
        b.cases.append(Case(Path(dev), f"the device {dev}", True, main=ALL, reason="device", in_tree=False))
        name = Path(dev).name
        link = b.add("image", f"link_{name}.png", None, f"a link to {dev}", main=ALL, reason="device",
                     embed="fail")  # fmt: skip
        link.symlink_to(dev)
    for folder, name, target in (("text", "passwd.txt", "/etc/passwd"), ("image", "passwd.png", "/etc/passwd"),
                                 ("imu", "hosts.csv", "/etc/hosts")):  # fmt: skip
        if Path(target).is_file():
            link = b.add(folder, name, None, f"a link out of the tree to {target}", may_load={"text"})
            link.symlink_to(target)
    (b.root / "misc" / "etc_dir").symlink_to("/etc", target_is_directory=True)
    loop_a, loop_b = b.root / "misc" / "loop_a.png", b.root / "misc" / "loop_b.png"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    for p in (loop_a, loop_b):
        b.cases.append(Case(p, "a symbolic link loop", True, main=ALL, reason="loop"))
    (b.root / "misc" / "dir_loop").symlink_to(b.root / "misc", target_is_directory=True)
    dangling = b.add("image", "dangling.png", None, "a dangling link", main=ALL, reason="broken|not found")
    dangling.symlink_to(b.root / "nowhere.png")
    (b.root / "image" / "folder.png").mkdir()
    b.cases.append(Case(b.root / "image" / "folder.png", "a directory named .png", True, main=ALL,
                        reason="directory", embed="any"))  # fmt: skip


def build_corpus(root: str | Path, seed: int = 0) -> list[Case]:
    """Write the hostile corpus under `root` (which must be empty or missing) and return its cases."""
    rng = np.random.default_rng(seed)
    b = _Builder(Path(root))
    goods = good_files(rng)
    for name, (folder, data, must) in goods.items():
        embed = "any" if name == "good_imu.npy" else "ok"  # a bare .npy has no sample rate
        b.add(folder, name, data, f"good {name}", bad=False, must_load=must, may_load=ALL, embed=embed)
    inside = b.add("image", "link_inside.png", None, "a link inside the tree", bad=False, must_load={"image"},
                   may_load=ALL, embed="ok")  # fmt: skip
    inside.symlink_to(b.root / "image" / "good.png")
    _garbage(b, rng)
    _truncated(b, goods)
    b.add("video", "cut_frame.avi", _cut_frame(goods["good.avi"][1]), "MJPEG AVI with one truncated JPEG frame",
          main={"video"}, reason="cannot decode|corrupt|truncat")  # fmt: skip
    _wrong_extension(b, goods)
    _bombs(b, goods["good.jpg"][1])
    _audio_headers(b)
    _arrays(b)
    _imu_csvs(b)
    _videos_and_text(b)
    _specials(b)
    return b.cases


# ---------------------------------------------------------------------------------------------------- child runs
def _text_loader(items: list[str], errors: str):
    """Text as `bindkit embed` reads it: each file as UTF-8 (read_texts), then tokenized."""
    from bindkit.data import LoadError, LoadResult, tokenize
    from bindkit.store.inputs import read_texts

    texts, keep, bad = read_texts([Path(p) for p in items])
    if bad and errors == "raise":
        raise LoadError("text", len(items), bad)
    res = tokenize(texts)
    return LoadResult(res, bad) if errors == "skip" else res


def loader(kind: str):
    """`fn(items, errors)` for one of `LOADERS`, with the options a bare `.npy` of IMU needs."""
    import bindkit.data as d

    fns = {"image": d.load_images, "video": d.load_videos, "audio": d.load_audio, "depth": d.load_depth,
           "thermal": d.load_thermal, "imu": lambda items, errors: d.load_imu(items, sample_rate=100.0, errors=errors),
           "text": _text_loader}  # fmt: skip
    fn = fns[kind]
    return lambda items, errors: fn(items, errors=errors)


def run_loader(kind: str, paths: list[str], out: str) -> None:
    """Child process: every path alone with errors="skip", then all together with errors="raise"; JSON lines."""
    import json

    from bindkit.data import LoadError

    fn = loader(kind)
    with open(out, "w") as log:

        def emit(**rec) -> None:
            log.write(json.dumps(rec) + "\n")
            log.flush()  # what was written survives a hang or a kill

        for i, p in enumerate(paths):
            emit(start=i)
            try:
                res = fn([p], "skip")
                s = res.skipped
                emit(
                    i=i,
                    ok=not s and len(res.tensor) == 1,
                    item=s[0].item if s else "",
                    reason=s[0].reason if s else "",
                )
            except Exception as e:  # noqa: BLE001 - a crash of the loader, reported by the test
                emit(i=i, crash=f"{type(e).__name__}: {e}")
        emit(start="batch")
        try:
            fn(paths, "raise")
            emit(batch=[])
        except LoadError as e:
            emit(batch=[[f.index, f.item, f.reason] for f in e.failures])
        except Exception as e:  # noqa: BLE001
            emit(batch_crash=f"{type(e).__name__}: {e}")


if __name__ == "__main__":  # python hostile_corpus.py KIND[,KIND...] paths.json OUT_DIR -> OUT_DIR/KIND.jsonl
    import json
    import sys

    import torch

    torch.set_num_threads(1)
    corpus_paths = json.loads(Path(sys.argv[2]).read_text())
    for k in sys.argv[1].split(","):  # one process for all loaders: importing torch is most of the cost
        run_loader(k, corpus_paths, str(Path(sys.argv[3]) / f"{k}.jsonl"))
