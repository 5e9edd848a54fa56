"""On-disk embedding cache: computed once per (item content, model), so re-running a metric costs seconds.

An item's key hashes its modality, its file's content (SHA-256), where in the file it is (crop box, time window,
loader keywords) and the package version; a text's key hashes the string. Content hashes are memoised per file by
(size, mtime), so unchanged files are not re-read; an edited file gets a new hash and so a cache miss.
Layout: `<root>/file_hashes.json` and `<root>/<model id>/<namespace>/shard-*.npz` (arrays `keys`, `emb`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bindkit.evaluate.readers.base import Item

DEFAULT_ROOT = Path.home() / ".cache" / "bindkit" / "eval"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(*parts: str) -> str:
    """SHA-256 hex digest of strings joined by a separator that cannot occur in them."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


@dataclass
class CacheStats:
    """How many embeddings came from the cache and how many were computed."""

    hits: int = 0
    misses: int = 0

    def add(self, other: CacheStats) -> None:
        self.hits += other.hits
        self.misses += other.misses


class EmbeddingCache:
    """Embeddings stored per (model id, namespace), looked up per item key."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else DEFAULT_ROOT
        self._index_path = self.root / "file_hashes.json"
        self._hashes: dict[str, list] = {}
        if self._index_path.is_file():
            self._hashes = json.loads(self._index_path.read_text())
        self._dirty = False

    def file_hash(self, path: str | Path) -> str:
        """Content hash of a file, re-read only when its size or mtime changed."""
        p = Path(os.path.abspath(path))  # abspath, not resolve(): no symlink walk per file on re-runs
        st = p.stat()
        known = self._hashes.get(str(p))
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return known[2]
        digest = sha256_file(p)
        self._hashes[str(p)] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def item_key(self, modality: str, item: Item, salt: str = "") -> str:
        """Key of one item: modality, file content, position in the file, loader keywords, `salt`."""
        return sha256_text(modality, self.file_hash(item.path), item.spec(), salt)

    def save_index(self) -> None:
        """Write the memoised file hashes (only when new ones were computed)."""
        if self._dirty:
            _atomic_write(self._index_path, json.dumps(self._hashes).encode())
            self._dirty = False

    def _dir(self, model_id: str, namespace: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in namespace)
        return self.root / model_id / safe

    def load(self, model_id: str, namespace: str) -> dict[str, np.ndarray]:
        """{key: embedding} stored for (model, namespace); empty when nothing is stored."""
        out: dict[str, np.ndarray] = {}
        for shard in sorted(self._dir(model_id, namespace).glob("shard-*.npz")):
            with np.load(shard) as z:
                out.update(zip(z["keys"].tolist(), z["emb"], strict=True))
        return out

    def get_or_compute(
        self,
        model_id: str,
        namespace: str,
        keys: Sequence[str],
        compute: Callable[[list[int]], np.ndarray],
        flush_every: int = 4096,
    ) -> tuple[np.ndarray, CacheStats]:
        """Embeddings (N, D) for `keys`: stored ones reused, the rest from `compute(positions)`, stored every
        `flush_every` items so an interrupted run resumes where it stopped."""
        stored = self.load(model_id, namespace)
        first: dict[str, int] = {}  # first position of each distinct key, in item order
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        todo = [k for k in first if k not in stored]  # computed once even when items repeat
        self.save_index()
        fresh: dict[str, np.ndarray] = {}
        for a in range(0, len(todo), flush_every):
            part = todo[a : a + flush_every]
            new = np.asarray(compute([first[k] for k in part]), dtype=np.float32)
            if new.ndim != 2 or len(new) != len(part):
                raise ValueError(f"compute returned shape {new.shape} for {len(part)} items")
            good = np.isfinite(new).all(1)  # rows that failed to load (NaN) are not stored: retried next time
            if good.any():
                self._store(model_id, namespace, [part[j] for j in np.flatnonzero(good)], new[good])
            fresh.update(zip(part, new, strict=True))
        if not keys:
            return np.zeros((0, 0), np.float32), CacheStats()
        misses = sum(k in fresh for k in keys)
        emb = np.stack([fresh[k] if k in fresh else stored[k] for k in keys]).astype(np.float32)
        return emb, CacheStats(hits=len(keys) - misses, misses=misses)

    def _store(self, model_id: str, namespace: str, keys: list[str], emb: np.ndarray) -> None:
        folder = self._dir(model_id, namespace)
        folder.mkdir(parents=True, exist_ok=True)
        name = sha256_text(*keys)[:16]  # content-named shard: rewriting the same items is idempotent
        tmp = folder / f"tmp-{name}.{os.getpid()}.npz"  # not matched by the shard glob if left behind
        np.savez(tmp, keys=np.array(keys, dtype="U64"), emb=emb)
        os.replace(tmp, folder / f"shard-{name}.npz")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
