"""Which modality a file holds: documented rules on its extension, its folder or name, and its content.

A file's *kind* is one of `kinds()`, the modality table's (`bindkit.modalities`; image and video are both embedded by
the vision encoder). Rules, in order:

1. The extension gives the candidate kinds (`candidates()`); an unknown extension is not embedded (and is listed).
2. An override (`--modality`) wins for every file whose candidates include it; other files follow the rules below.
3. A hint word (`hints()`) in the file name (tokens split on `_ - . space`) or in one of its three nearest folders,
   nearest first, picks a candidate: `scans/depth/0001.png` is depth, `clip_thermal.png` is thermal.
4. Otherwise the content decides: each candidate's `sniff` rule in table order, the first that claims it wins. A PNG/TIFF with one 16-bit or float channel is depth or thermal, which cannot be
   told apart, so it is reported as ambiguous (use a folder name or `--modality`); any other picture is an image.
   A `.npy`/`.npz` array shaped (6, N) or (N, 6) is IMU, (H, W) or (1, H, W) is depth. A CSV whose header has a
   `path` column is a manifest (see `embed.py`), any other CSV is IMU.
5. Single-candidate extensions need no rule: `.wav` is audio, `.mp4` video, `.txt` text.
"""

from __future__ import annotations

import re
from pathlib import Path

import bindkit.modalities as modalities
from bindkit.modalities.audio import AUDIO_EXT as AUDIO_EXT
from bindkit.modalities.vision import IMAGE_EXT as IMAGE_EXT
from bindkit.modalities.vision import VIDEO_EXT as VIDEO_EXT

# AUDIO_EXT, IMAGE_EXT, VIDEO_EXT: the built-in kinds' extensions (from their modality files), for callers' checks.


def kinds() -> tuple[str, ...]:
    """Every kind a file may hold (the modality table's, in its order)."""
    return modalities.kinds()


def candidates() -> dict[str, tuple[str, ...]]:
    """Extension -> the kinds it may hold, in table order."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in modalities.specs():
        for ext in spec.detect_extensions:
            out[ext] = (*out.get(ext, ()), spec.name)
    return out


def hints() -> dict[str, str]:
    """Hint word -> the kind it names."""
    return {w: spec.name for spec in modalities.specs() for w in (spec.name, *spec.hints)}


MANIFEST_EXT = (".jsonl",)  # a `.csv` is a manifest when its header names a `path` column


class DetectError(ValueError):
    """A file's modality could not be decided; the message says why and how to resolve it."""


class UnreadableFile(DetectError):
    """The file's content could not be read to decide its kind (not a regular file, corrupt, over a limit)."""


def encoder_of(kind: str) -> str:
    """The encoder that embeds a kind (`image`/`video` -> `vision`)."""
    return modalities.encoder_of(kind)


def normalize_kind(name: str) -> str:
    """Check a user-given modality name (`vision` means image)."""
    return modalities.spec(name).name


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
    table = hints()
    for words in places:
        for w in words:
            kind = table.get(w)
            if kind in candidates:
                return kind
    return None


def is_picture(path: Path) -> bool:
    """Any readable picture but a single-channel 16-bit or float one (depth or thermal: ambiguous, raises)."""
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
    return True


def any_file(path: Path) -> bool:
    """The kind a container holds unless told otherwise (a video file is a video)."""
    return True


def _array_shape(path: Path) -> tuple[int, ...]:
    from bindkit.data.errors import ItemError
    from bindkit.data.limits import array_header, check_file

    try:
        check_file(path)
        return array_header(path)[0]  # the first array's header only: nothing is decompressed or loaded
    except ItemError as e:
        raise UnreadableFile(str(e)) from e


def _imu_shape(shape: tuple[int, ...]) -> bool:
    return len(shape) == 2 and 6 in shape and max(shape) > 6


def is_imu_array(path: Path) -> bool:
    """An array shaped (6, N) or (N, 6); any CSV that is not a manifest."""
    return path.suffix.lower() not in (".npy", ".npz") or _imu_shape(_array_shape(path))


def is_depth_array(path: Path) -> bool:
    """An array shaped (H, W) or (1, H, W) that is not IMU-shaped."""
    shape = _array_shape(path)
    return not _imu_shape(shape) and (len(shape) == 2 or (len(shape) == 3 and shape[0] == 1))


def detect_modality(path: str | Path, override: str | None = None) -> str:
    """The kind of one file by the module's rules; raises `DetectError` naming the reason."""
    path = Path(path)
    cands = candidates().get(path.suffix.lower())
    if cands is None:
        raise DetectError(f"unknown file type {path.suffix or '(no extension)'!r}")
    if override is not None and normalize_kind(override) in cands:
        return normalize_kind(override)
    if len(cands) == 1:
        return cands[0]
    hinted = _hint(path, cands)
    if hinted is not None:
        return hinted
    for kind in cands:  # content rules, in table order
        sniff = modalities.spec(kind).sniff
        if sniff is not None and modalities.resolve(sniff)(path):
            return kind
    raise DetectError(f"the content is neither of {', '.join(cands)}; put it under a folder named after its kind, "
                      "or pass --modality")  # fmt: skip
