"""Which modality a file holds: documented rules on its extension, its folder or name, and its content.

A file's *kind* is one of `KINDS` (image and video are both embedded by the vision encoder). Rules, in order:

1. The extension gives the candidate kinds (`CANDIDATES`); an unknown extension is not embedded (and is listed).
2. An override (`--modality`) wins for every file whose candidates include it; other files follow the rules below.
3. A hint word (`HINTS`) in the file name (tokens split on `_ - . space`) or in one of its three nearest folders,
   nearest first, picks a candidate: `scans/depth/0001.png` is depth, `clip_thermal.png` is thermal.
4. Otherwise the content decides: a PNG/TIFF with one 16-bit or float channel is depth or thermal, which cannot be
   told apart, so it is reported as ambiguous (use a folder name or `--modality`); any other picture is an image.
   A `.npy`/`.npz` array shaped (6, N) or (N, 6) is IMU, (H, W) or (1, H, W) is depth. A CSV whose header has a
   `path` column is a manifest (see `embed.py`), any other CSV is IMU.
5. Single-candidate extensions need no rule: `.wav` is audio, `.mp4` video, `.txt` text.
"""

from __future__ import annotations

import re
from pathlib import Path

KINDS = ("image", "video", "text", "audio", "depth", "thermal", "imu")
ENCODER = {"image": "vision", "video": "vision"}  # kind -> encoder name where they differ

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
VIDEO_EXT = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a")
CANDIDATES: dict[str, tuple[str, ...]] = {
    **{e: ("image", "depth", "thermal") for e in IMAGE_EXT},
    **{e: ("video", "audio") for e in VIDEO_EXT},  # `audio` only by hint or override: the file's sound track
    **{e: ("audio",) for e in AUDIO_EXT},
    ".txt": ("text",),
    ".csv": ("imu",),
    ".npy": ("depth", "imu"),
    ".npz": ("depth", "imu"),
}
HINTS: dict[str, str] = {
    "image": "image", "images": "image", "img": "image", "rgb": "image", "photo": "image", "photos": "image",
    "visible": "image", "video": "video", "videos": "video", "audio": "audio", "sound": "audio",
    "sounds": "audio", "speech": "audio", "depth": "depth", "disparity": "depth", "thermal": "thermal",
    "infrared": "thermal", "lwir": "thermal", "imu": "imu", "text": "text", "texts": "text", "captions": "text",
}  # fmt: skip
MANIFEST_EXT = (".jsonl",)  # a `.csv` is a manifest when its header names a `path` column


class DetectError(ValueError):
    """A file's modality could not be decided; the message says why and how to resolve it."""


class UnreadableFile(DetectError):
    """The file's content could not be read to decide its kind (not a regular file, corrupt, over a limit)."""


def encoder_of(kind: str) -> str:
    """The encoder that embeds a kind (`image`/`video` -> `vision`)."""
    return ENCODER.get(kind, kind)


def normalize_kind(name: str) -> str:
    """Check a user-given modality name (`vision` means image)."""
    kind = {"vision": "image"}.get(name, name)
    if kind not in KINDS:
        raise ValueError(f"unknown modality {name!r}; choose from {', '.join(KINDS)}")
    return kind


def is_manifest(path: Path) -> bool:
    """A `.jsonl` file, or a `.csv` whose header has a `path` column."""
    suffix = path.suffix.lower()
    if suffix in MANIFEST_EXT:
        return True
    return suffix == ".csv" and "path" in _csv_header(path)


def _csv_header(path: Path) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            line = f.readline()
    except OSError:
        return []
    return [c.strip().strip('"').lower() for c in line.split(",")]


def _hint(path: Path, candidates: tuple[str, ...]) -> str | None:
    """The first hint word among the name's tokens, then the three nearest folders, that is a candidate."""
    places = [re.split(r"[_\-.\s]+", path.stem.lower())] + [[p.lower()] for p in path.parent.parts[::-1][:3]]
    for words in places:
        for w in words:
            kind = HINTS.get(w)
            if kind in candidates:
                return kind
    return None


def _picture_kind(path: Path) -> str:
    from PIL import UnidentifiedImageError

    from bindkit.data.errors import ItemError
    from bindkit.data.limits import check_file, open_picture

    try:
        check_file(path)  # a non-empty regular file: never open a FIFO or device, it would block
        with open(path, "rb") as f, open_picture(f) as img:  # the header only, checked against the pixel cap
            mode = img.mode
    except ItemError as e:
        raise UnreadableFile(str(e)) from e
    except UnidentifiedImageError as e:
        raise UnreadableFile(f"not a readable picture ({e})") from e
    except Exception as e:  # Pillow's header parsers raise many types; each is this file's problem, not the run's
        raise UnreadableFile(f"not a readable picture ({type(e).__name__}: {e})") from e
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        raise DetectError(
            f"ambiguous: a single-channel {mode} picture may be depth or thermal; put it under a folder named "
            "depth/ or thermal/, or pass --modality"
        )
    return "image"


def _array_shape(path: Path) -> tuple[int, ...]:
    from bindkit.data.errors import ItemError
    from bindkit.data.limits import array_header, check_file

    try:
        check_file(path)
        return array_header(path)[0]  # the first array's header only: nothing is decompressed or loaded
    except ItemError as e:
        raise UnreadableFile(str(e)) from e


def _array_kind(path: Path) -> str:
    shape = _array_shape(path)
    if len(shape) == 2 and 6 in shape and max(shape) > 6:
        return "imu"
    if len(shape) == 2 or (len(shape) == 3 and shape[0] == 1):
        return "depth"
    raise DetectError(f"array of shape {shape} is neither IMU (6, N)/(N, 6) nor a depth map (H, W)")


def detect_modality(path: str | Path, override: str | None = None) -> str:
    """The kind of one file by the module's rules; raises `DetectError` naming the reason."""
    path = Path(path)
    candidates = CANDIDATES.get(path.suffix.lower())
    if candidates is None:
        raise DetectError(f"unknown file type {path.suffix or '(no extension)'!r}")
    if override is not None and normalize_kind(override) in candidates:
        return normalize_kind(override)
    if len(candidates) == 1:
        return candidates[0]
    hinted = _hint(path, candidates)
    if hinted is not None:
        return hinted
    if candidates[0] == "image":
        return _picture_kind(path)
    if candidates[0] == "video":
        return "video"
    return _array_kind(path)
