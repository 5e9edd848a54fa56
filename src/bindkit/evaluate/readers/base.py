"""The uniform dataset object every reader returns, and the file-finding helpers they share."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

KINDS = ("classification", "multilabel", "retrieval")

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def item_modalities() -> tuple[str, ...]:
    """Encoder inputs a reader can declare: the table's file kinds, `vision` naming images ("video" runs through
    the vision encoder with the video loader)."""
    from bindkit.modalities import specs

    return tuple("vision" if s.name == "image" else s.name for s in specs() if not s.text_items)


@dataclass(frozen=True)
class Item:
    """One thing to embed: a file, plus where in it (a crop box, a time window) and loader keywords."""

    path: Path
    box: tuple[int, int, int, int] | None = None  # crop (left, top, right, bottom) in pixels
    window: tuple[float, float] | None = None  # [start, end) seconds within the file
    params: tuple[tuple[str, Any], ...] = ()  # loader keywords, e.g. (("focal", 518.9), ("baseline", 0.075))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    def spec(self) -> str:
        """Everything but the file's content that decides the embedding, as a stable string (for cache keys)."""
        return json.dumps([self.box, self.window, sorted(self.params)], default=str)


@dataclass
class EvalDataset:
    """Items of one modality with labels (classification), label lists (multi-label) or captions (retrieval)."""

    name: str
    modality: str
    kind: str
    items: list[Item]
    class_names: list[str] = field(default_factory=list)
    prompt_names: list[list[str]] | None = None  # names prompts are built from (synonyms: best one counts)
    labels: list | None = None  # int per item, or a list of ints per item (multi-label)
    captions: list[list[str]] | None = None
    folds: list[int] | None = None  # ESC-50 fold per item
    splits: list[str] | None = None  # "train" / "test" per item, where the dataset defines them
    missing: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of rows left out
    excluded: dict[str, int] = field(default_factory=dict)  # rows left out on purpose, by reason
    root: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.modality not in item_modalities():
            raise ValueError(f"{self.name}: modality must be one of {item_modalities()}, got {self.modality!r}")  # fmt: skip
        if self.prompt_names is None:
            self.prompt_names = [[n] for n in self.class_names]
        for what in ("labels", "captions", "folds", "splits"):
            v = getattr(self, what)
            if v is not None and len(v) != len(self.items):
                raise ValueError(f"{self.name}: {len(self.items)} items but {len(v)} {what}")
        if self.kind != "retrieval" and self.labels is None:
            raise ValueError(f"{self.name}: a {self.kind} dataset needs labels")
        if self.kind == "retrieval" and self.captions is None:
            raise ValueError(f"{self.name}: a retrieval dataset needs captions")

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, idx: list[int], name: str | None = None) -> EvalDataset:
        """The same dataset restricted to the items at `idx` (in that order)."""
        pick = lambda v: None if v is None else [v[i] for i in idx]  # noqa: E731
        return replace(
            self, name=name or self.name, items=[self.items[i] for i in idx], labels=pick(self.labels),
            captions=pick(self.captions), folds=pick(self.folds), splits=pick(self.splits),
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """Counts for reports: items, classes, files missing and rows excluded."""
        return {
            "dataset": self.name, "modality": self.modality, "kind": self.kind, "items": len(self.items),
            "classes": len(self.class_names), "missing": len(self.missing), "excluded": dict(self.excluded),
            "notes": list(self.notes),
        }  # fmt: skip


@overload
def find_one(root: Path, name: str, required: Literal[True] = ..., max_depth: int = ...) -> Path: ...
@overload
def find_one(root: Path, name: str, required: bool, max_depth: int = ...) -> Path | None: ...
def find_one(root: Path, name: str, required: bool = True, max_depth: int = 4) -> Path | None:
    """The shallowest file called `name` under `root` (breadth-first, `max_depth` levels)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a directory")
    level = [root]
    for _ in range(max_depth + 1):
        hits = sorted(p / name for p in level if (p / name).is_file())
        if hits:
            return hits[0]
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
    if required:
        raise FileNotFoundError(f"no {name} found under {root} (searched {max_depth} levels deep)")
    return None


def index_files(root: Path, exts: tuple[str, ...]) -> dict[str, Path]:
    """{file stem: path} of every file with one of `exts` under `root`; the first in sorted order wins a clash."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if p.suffix.lower() in exts:
                out.setdefault(p.stem, p)
    return out


def read_text(path: Path, encodings: tuple[str, ...] = ("utf-8-sig", "iso-8859-1")) -> str:
    """File text in the first encoding that decodes it (Clotho's metadata is ISO-8859-1)."""
    data = Path(path).read_bytes()
    for enc in encodings:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path}: not decodable as any of {encodings}")


@overload
def read_csv(path: Path, header: Literal[True] = ..., **kw: Any) -> list[dict[str, str]]: ...
@overload
def read_csv(path: Path, header: Literal[False], **kw: Any) -> list[list[str]]: ...
def read_csv(path: Path, header: bool = True, **kw: Any) -> list[dict[str, str]] | list[list[str]]:
    """Rows of a CSV with a real parser (quoted commas, CRLF); dicts keyed by the header, or lists without one."""
    f = io.StringIO(read_text(path), newline="")
    if header:
        rows = list(csv.DictReader(f, **kw))
        for i, r in enumerate(rows):
            if None in r:  # more fields than the header: an unquoted comma, usually
                raise ValueError(f"{path}: data row {i + 1} has more fields than the header: {r[None]}")
        return [{k.strip(): (v or "").strip() for k, v in r.items()} for r in rows]
    return [[c.strip() for c in r] for r in csv.reader(f, **kw) if r]


def need_columns(rows: list[dict[str, str]], columns: tuple[str, ...], path: Path) -> None:
    """Raise naming the file and the absent columns if the CSV lacks any of `columns`."""
    have = set(rows[0]) if rows else set()
    lacking = [c for c in columns if c not in have]
    if lacking or not rows:
        raise ValueError(f"{path}: expected columns {list(columns)}, missing {lacking or 'all rows'}")


def check_missing(name: str, missing: list[tuple[str, str]], policy: str) -> None:
    """With policy "error", fail naming the first missing files; with "skip", keep them listed in the dataset."""
    if policy not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', got {policy!r}")
    if missing and policy == "error":
        shown = "; ".join(f"{f} ({why})" for f, why in missing[:5])
        raise FileNotFoundError(
            f"{name}: {len(missing)} listed files are absent, e.g. {shown} (pass missing='skip')"
        )
