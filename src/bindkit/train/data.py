"""Paired datasets: in-memory tensors (`TensorPairs`) or rows of a JSONL/Parquet manifest (`FilePairs`).

A pair dataset yields model inputs for its two sides, `(anchor, other)`, e.g. ("vision", "depth"). Besides
loading, it names each item by content (for the anchor-embedding cache: a hash of the file or tensor row) and
says how many *views* each item has (a video source has one per listed time; others one; augmentation adds its own).

Manifest rows are JSON objects with one field per side: `image` (or `vision`/`video`) for the vision side and the
modality name for the other (`audio`, `depth`, `thermal`, `imu`, `text`), paths relative to the manifest's folder;
optional `label`; optional `times` (seconds, a list: the vision side becomes the frame at the chosen time and audio
the clip centred on it); any field a loader takes (`focal_length`, `baseline`, `start`, `encoding`, ...).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import bindkit.modalities as modalities
from bindkit.config import EncoderConfig, canonical
from bindkit.train.sources import load_side

COLUMNS = {"vision": ("image", "vision", "video", "frame")}  # manifest field names per side, first match wins


def digest(data: bytes) -> str:
    """Short content hash used in cache keys (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class PairDataset:
    """Base class: subclasses set `modalities`, `labels` and implement `__len__`, `load`, `content_keys`."""

    modalities: tuple[str, str]
    labels: list[Any] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    def num_views(self) -> np.ndarray:
        """Intrinsic views per item (N,), e.g. the number of listed times of a video source; 1 by default."""
        return np.ones(len(self), dtype=np.int64)

    def view_name(self, i: int, view: int) -> str:
        """The part of a cache key that names view `view` of item `i`."""
        return str(view)

    def content_keys(self, side: int, hasher: FileHasher | None = None) -> list[str]:
        """One content hash per item of side 0 (anchor) or 1 (other)."""
        raise NotImplementedError

    def load(self, side: int, idx: np.ndarray, views: np.ndarray, cfg: EncoderConfig) -> torch.Tensor:
        """Model inputs of side `side` for items `idx` at views `views` (before augmentation)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise, naming every problem, if the data cannot be loaded (e.g. missing files)."""

    def describe(self) -> str:
        """A one-line description for the resolved config."""
        return f"<{type(self).__name__} {self.modalities} n={len(self)}>"


class TensorPairs(PairDataset):
    """Pre-loaded model inputs: `anchor` (N, ...) and `other` (N, ...) tensors of the two modalities."""

    def __init__(self, modalities: Sequence[str], anchor: torch.Tensor, other: torch.Tensor,
                 labels: Sequence[Any] | None = None):  # fmt: skip
        self.modalities = (canonical(modalities[0]), canonical(modalities[1]))
        if len(anchor) != len(other) or (labels is not None and len(labels) != len(anchor)):
            raise ValueError(f"TensorPairs {self.modalities}: {len(anchor)} anchor rows, {len(other)} other rows"
                             f"{'' if labels is None else f', {len(labels)} labels'}; they must match")  # fmt: skip
        self.tensors = (anchor, other)
        self.labels = None if labels is None else list(labels)
        self._keys: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self.tensors[0])

    def content_keys(self, side: int, hasher: FileHasher | None = None) -> list[str]:
        if side not in self._keys:
            x = self.tensors[side].detach().cpu().contiguous()
            flat = x.reshape(len(x), -1).view(torch.uint8) if x.numel() else x.reshape(len(x), 0)
            rows = flat.numpy()
            self._keys[side] = [digest(r.tobytes()) for r in rows]
        return self._keys[side]

    def load(self, side: int, idx: np.ndarray, views: np.ndarray, cfg: EncoderConfig) -> torch.Tensor:
        return self.tensors[side][torch.from_numpy(np.asarray(idx, dtype=np.int64))]

    def describe(self) -> str:
        shapes = [tuple(t.shape[1:]) for t in self.tensors]
        return f"<TensorPairs {self.modalities} n={len(self)} shapes={shapes}>"


class FilePairs(PairDataset):
    """Rows of (anchor, other) files, from a manifest file or a list of dicts (paths relative to `root`)."""

    def __init__(self, modalities: Sequence[str], rows: Sequence[dict[str, Any]], root: str | Path | None = None,
                 options: dict[str, dict[str, Any]] | None = None, source: str = "<rows>"):  # fmt: skip
        self.modalities = (canonical(modalities[0]), canonical(modalities[1]))
        self.rows, self.source = list(rows), source
        self.root = Path(root) if root is not None else None
        self.options = options or {}
        self.num_workers = 0  # loader threads per batch (the engine sets TrainConfig.num_workers)
        if not self.rows:
            raise ValueError(f"{source}: no rows")
        self.columns = tuple(self._column(m) for m in self.modalities)
        self.items = tuple(
            [self._item(r, c, m) for r in self.rows]
            for c, m in zip(self.columns, self.modalities, strict=True)
        )
        self.times = [_times(r, i, source) for i, r in enumerate(self.rows)]
        labels = [r.get("label") for r in self.rows]
        self.labels = None if all(v is None for v in labels) else labels
        self._keys: dict[int, list[str]] = {}

    @classmethod
    def from_manifest(cls, modalities: Sequence[str], path: str | Path,
                      options: dict[str, dict[str, Any]] | None = None) -> FilePairs:  # fmt: skip
        """Read a JSONL / Parquet / JSON-list manifest; relative paths resolve against its folder."""
        path = Path(path)
        return cls(modalities, read_manifest(path), root=path.parent, options=options, source=str(path))

    def _column(self, modality: str) -> str:
        names = COLUMNS.get(modality, (modality,))
        for name in names:
            if name in self.rows[0]:
                return name
        raise ValueError(f"{self.source}: rows need a field {' / '.join(map(repr, names))} for the {modality} side; "
                         f"the first row has {sorted(self.rows[0])}")  # fmt: skip

    def _item(self, row: dict[str, Any], column: str, modality: str) -> Any:
        if column not in row or row[column] in (None, ""):
            raise ValueError(f"{self.source}: a row has no {column!r} value: {row}")
        value = row[column]
        if modalities.spec(modality).text_items:  # the manifest value is the data (a caption), not a path
            return str(value)
        p = Path(value)
        return p if p.is_absolute() or self.root is None else self.root / p

    def __len__(self) -> int:
        return len(self.rows)

    def num_views(self) -> np.ndarray:
        return np.array([max(1, len(t)) for t in self.times], dtype=np.int64)

    def view_name(self, i: int, view: int) -> str:
        return f"t={self._time(i, view):.3f}/{view}" if self.times[i] else str(view)

    def _time(self, i: int, view: int) -> float:
        # Views past an item's own times (augmented views of a one-time video) reuse its times in turn.
        return self.times[i][view % len(self.times[i])]

    def content_keys(self, side: int, hasher: FileHasher | None = None) -> list[str]:
        if side not in self._keys:
            items = self.items[side]
            if modalities.spec(self.modalities[side]).text_items:
                self._keys[side] = [digest(s.encode()) for s in items]
            else:
                self._keys[side] = [(hasher or FileHasher()).hash(p) for p in items]
        return self._keys[side]

    def load(self, side: int, idx: np.ndarray, views: np.ndarray, cfg: EncoderConfig) -> torch.Tensor:
        items = [self.items[side][i] for i in idx]
        times = [self._time(i, v) if self.times[i] else None for i, v in zip(idx, views, strict=True)]
        rows = [self.rows[i] for i in idx]
        options = {"num_workers": self.num_workers, **self.options.get(self.modalities[side], {})}
        return load_side(cfg, items, rows, times, options)

    def check(self) -> None:
        missing = []
        for side, m in enumerate(self.modalities):
            if modalities.spec(m).text_items:
                continue
            for i, p in enumerate(self.items[side]):
                if not p.is_file() or p.stat().st_size == 0:
                    why = "missing" if not p.exists() else "empty" if p.is_file() else "not a file"
                    missing.append(f"  row {i} {self.columns[side]}: {p} ({why})")
        if missing:
            more = f"\n  ... and {len(missing) - 50} more" if len(missing) > 50 else ""
            raise FileNotFoundError(f"{self.source}: {len(missing)} file(s) cannot be read; the run will not "
                                    f"start:\n" + "\n".join(missing[:50]) + more)  # fmt: skip

    def describe(self) -> str:
        return f"<FilePairs {self.modalities} {self.source} n={len(self)}>"


def _times(row: dict[str, Any], i: int, source: str) -> list[float]:
    t = row.get("times", row.get("time"))
    if t is None:
        return []
    t = [t] if isinstance(t, (int, float)) else list(t)
    if not all(isinstance(v, (int, float)) and v >= 0 for v in t):
        raise ValueError(f"{source}: row {i}: times must be non-negative seconds, got {t}")
    return [float(v) for v in t]


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a manifest: `.jsonl` (one object per line), `.parquet`, or `.json` (a list of objects)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            raise ValueError(f"{path}: a .json manifest must hold a list of objects")
        return rows
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not a JSON object ({e.msg})") from e
    return rows


def write_manifest(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write rows as JSONL (or Parquet for a `.parquet` path); paths are stored as given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = [{k: str(v) if isinstance(v, Path) else v for k, v in r.items()} for r in rows]
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(clean), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in clean))
    return path


class FileHasher:
    """Content hashes of files, remembered by (path, inode, size, mtime, ctime) in a JSONL index so unchanged files
    are not re-read on the next run. Any write to a file, or replacing it, changes its ctime (which, unlike mtime,
    cannot be set back), so a changed file is always hashed again."""

    def __init__(self, index: str | Path | None = None):
        self.index = Path(index) if index is not None else None
        self.known: dict[str, str] = {}
        self._new: list[str] = []
        if self.index is not None and self.index.is_file():
            for line in self.index.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.known[rec["id"]] = rec["hash"]

    def hash(self, path: str | Path) -> str:
        """Content hash of one file."""
        p = Path(path).resolve()
        st = p.stat()
        ident = f"{p}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"
        if ident not in self.known:
            h = hashlib.blake2b(digest_size=16)
            with open(p, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            self.known[ident] = h.hexdigest()
            self._new.append(json.dumps({"id": ident, "hash": self.known[ident]}))
        return self.known[ident]

    def save(self) -> None:
        """Append newly hashed files to the index."""
        if self.index is not None and self._new:
            self.index.parent.mkdir(parents=True, exist_ok=True)
            with open(self.index, "a") as f:
                f.write("".join(s + "\n" for s in self._new))
            self._new = []


def as_dataset(
    modalities: Sequence[str], data: Any, options: dict[str, dict[str, Any]] | None = None
) -> PairDataset:
    """A PairConfig's `data` (manifest path, list of row dicts, or PairDataset) as a PairDataset."""
    mods = (canonical(modalities[0]), canonical(modalities[1]))
    if isinstance(data, PairDataset):
        if data.modalities != mods:
            raise ValueError(f"pair {mods}: its dataset holds {data.modalities}")
        return data
    if isinstance(data, (str, Path)):
        return FilePairs.from_manifest(mods, data, options)
    if isinstance(data, list):
        return FilePairs(mods, data, options=options)
    raise TypeError(f"pair {mods}: data must be a manifest path, a list of rows or a PairDataset, got "
                    f"{type(data).__name__}")  # fmt: skip
