"""The frozen-anchor cache: embeddings of a frozen encoder, computed once and memory-mapped from disk.

Layout: `<cache_dir>/<modality>-<fingerprint>/shard-<id>.npy` (float32 rows, unit norm) with `shard-<id>.keys`
(one key per line, written last, so a shard without its keys file is ignored). The folder name carries the
encoder's fingerprint (a hash of its config, every weight, the input options, the augmentation seed and the
precision), so a changed anchor never reads another's rows. A row's key is `<content hash>:<view>`: the hash of
the file or tensor row, and the view (augmentation index or video time), so a changed file is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bindkit.config import EncoderConfig
from bindkit.model import Encoder

SHARD_ROWS = 1 << 16  # rows per shard written during a fill


def fingerprint(encoder: Encoder, extra: dict[str, Any]) -> str:
    """Hash of an encoder's config, weights (names, dtypes, shapes, bytes) and `extra` settings: its identity."""
    h = hashlib.blake2b(digest_size=16)
    enc_cfg = getattr(encoder, "cfg", None)
    cfg = enc_cfg.to_dict() if isinstance(enc_cfg, EncoderConfig) else {}  # as config.json holds it
    h.update(json.dumps({"config": cfg, **extra}, sort_keys=True, default=str).encode())
    for name, t in encoder.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class AnchorCache:
    """Key -> embedding row store in one folder; reads are memory-mapped, writes add shards."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.reload()

    def reload(self) -> None:
        """(Re)read the shards on disk (other processes may have added some)."""
        self.shards: list[np.ndarray] = []
        self.offsets: list[int] = []
        self.index: dict[str, int] = {}
        total = 0
        for keys_file in sorted(self.folder.glob("shard-*.keys")):
            arr = np.load(keys_file.with_suffix(".npy"), mmap_mode="r")
            keys = keys_file.read_text().splitlines()
            if len(keys) != len(arr):
                continue  # a torn write: ignore the shard
            self.shards.append(arr)
            self.offsets.append(total)
            for i, k in enumerate(keys):
                self.index.setdefault(k, total + i)
            total += len(arr)

    def __len__(self) -> int:
        return len(self.index)

    def missing(self, keys: Sequence[str]) -> list[int]:
        """Positions of `keys` not in the cache."""
        return [i for i, k in enumerate(keys) if k not in self.index]

    def add(self, keys: Sequence[str], rows: np.ndarray) -> None:
        """Store embeddings (len(keys), D) as a new shard (atomic: data first, keys file last)."""
        if len(keys) != len(rows):
            raise ValueError(f"{len(keys)} keys for {len(rows)} rows")
        name = f"shard-{uuid.uuid4().hex}"
        tmp = self.folder / f".{name}.tmp.npy"
        np.save(tmp, np.ascontiguousarray(rows, dtype=np.float32))
        os.replace(tmp, self.folder / f"{name}.npy")
        tmp_keys = self.folder / f".{name}.keys.tmp"
        tmp_keys.write_text("".join(k + "\n" for k in keys))
        os.replace(tmp_keys, self.folder / f"{name}.keys")
        arr = np.load(self.folder / f"{name}.npy", mmap_mode="r")
        base = self.offsets[-1] + len(self.shards[-1]) if self.shards else 0
        self.shards.append(arr)
        self.offsets.append(base)
        for i, k in enumerate(keys):
            self.index.setdefault(k, base + i)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """Global row ids of `keys` (all must be present)."""
        try:
            return np.array([self.index[k] for k in keys], dtype=np.int64)
        except KeyError as e:
            raise KeyError(f"anchor cache {self.folder}: no entry for {e.args[0]}") from None

    def gather(self, rows: np.ndarray) -> torch.Tensor:
        """Embeddings of global row ids, (len(rows), D) float32, read through the memory maps."""
        if len(self.shards) == 1:
            return torch.from_numpy(np.asarray(self.shards[0][rows]))
        out = np.empty((len(rows), self.shards[0].shape[1]), dtype=np.float32)
        starts = np.asarray(self.offsets)
        which = np.searchsorted(starts, rows, side="right") - 1
        for s in np.unique(which):
            sel = which == s
            out[sel] = self.shards[s][rows[sel] - starts[s]]
        return torch.from_numpy(out)
