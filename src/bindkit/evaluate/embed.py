"""Dataset items and texts -> unit embeddings with a model, batched, through the on-disk cache.

The only place where evaluation meets `bindkit.data`: each item's file (with its crop box, time window and loader
keywords) goes to the loader of its modality with the sizes of the model's config, then to `model.encode`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from bindkit.evaluate.cache import CacheStats, EmbeddingCache, sha256_text
from bindkit.evaluate.readers.base import EvalDataset, Item
from bindkit.evaluate.readers.imu import imu_window, read_imu_csv

ENCODER_OF = {"vision": "vision", "video": "vision", "audio": "audio", "depth": "depth", "thermal": "thermal",
              "imu": "imu", "text": "text"}  # fmt: skip


def _shape(model: Any, encoder: str, default: tuple[int, ...]) -> tuple[int, ...]:
    cfg = getattr(model, "config", None)
    enc = getattr(cfg, "encoders", {}).get(encoder) if cfg is not None else None
    return tuple(enc.input_shape) if enc is not None and enc.input_shape else default


def _preprocess(model: Any, encoder: str) -> dict[str, Any]:
    cfg = getattr(model, "config", None)
    enc = getattr(cfg, "encoders", {}).get(encoder) if cfg is not None else None
    return dict(enc.preprocess) if enc is not None else {}


def _crop(item: Item, mode: str) -> Image.Image | Path:
    """The file itself, or the crop box of it as a PIL image."""
    if item.box is None:
        return item.path
    with Image.open(item.path) as im:
        return im.convert(mode).crop(item.box)


class _IMUFiles:
    """Parsed IMU CSVs, the last few kept: windows of one recording are loaded one after another."""

    def __init__(self, keep: int = 4):
        self.keep, self.table = keep, {}

    def window(self, item: Item, length: int) -> np.ndarray:
        if item.path not in self.table:
            if len(self.table) >= self.keep:
                self.table.pop(next(iter(self.table)))
            self.table[item.path] = read_imu_csv(item.path)
        times, values = self.table[item.path]
        if item.window is None:
            item = Item(item.path, window=(float(times[0]), float(times[-1])))
        return imu_window(times, values, item.window, length)


def load_inputs(
    modality: str, items: Sequence[Item], model: Any, errors: str = "raise", imu: _IMUFiles | None = None
):
    """Model input for items of one modality (a tensor, or `LoadResult` with errors="skip")."""
    from bindkit import data

    enc = ENCODER_OF[modality]
    shape = _shape(model, enc, {"vision": (3, 224, 224), "depth": (1, 224, 224), "thermal": (1, 224, 224),
                                "audio": (1, 128, 204), "imu": (6, 2000)}[enc])  # fmt: skip
    pre = _preprocess(model, enc)
    if modality == "vision":
        return data.load_images([_crop(it, "RGB") for it in items], size=shape[-1], errors=errors)
    if modality == "video":
        return data.load_videos([it.path for it in items], size=shape[-1], errors=errors)
    if modality == "audio":
        return data.load_audio([it.path for it in items], num_mel_bins=shape[1], target_length=shape[2],
                               errors=errors, **pre)  # fmt: skip
    if modality == "thermal":
        return data.load_thermal([_crop(it, "L") for it in items], size=shape[-1], errors=errors, **pre)
    if modality == "depth":
        kw = {k: [it.kwargs[k] for it in items] for k in items[0].kwargs}
        return data.load_depth([it.path for it in items], size=shape[-1], errors=errors, **kw, **pre)
    if modality == "imu":
        imu = imu or _IMUFiles()
        arrays = [imu.window(it, shape[-1]) if it.path.suffix == ".csv" else it.path for it in items]
        return data.load_imu(arrays, length=shape[-1], errors=errors, **pre)
    raise ValueError(f"no loader for modality {modality!r}")


class Embedder:
    """Embeds datasets and texts with one model; `model.encode({encoder: batch})` must return unit rows."""

    def __init__(
        self,
        model: torch.nn.Module,
        model_id: str,
        cache: EmbeddingCache | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        batch_size: int = 32,
        on_error: str = "raise",
        progress: bool = True,
    ):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.model, self.model_id, self.cache = model, model_id, cache
        self.device, self.dtype, self.batch_size = torch.device(device), dtype, batch_size
        self.on_error, self.progress = on_error, progress
        self.stats = CacheStats()

    def _encode(self, encoder: str, x: torch.Tensor) -> np.ndarray:
        x = x.to(self.device)
        if self.dtype is not None and x.is_floating_point():
            x = x.to(self.dtype)
        with torch.no_grad():
            y = self.model.encode({encoder: x})[encoder]
        return torch.nn.functional.normalize(y.float(), dim=-1).cpu().numpy()

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit text embeddings (N, D)."""
        from bindkit import data

        length = _shape(self.model, "text", (77,))[0]

        def compute(pos: list[int]) -> np.ndarray:
            out = []
            for a in range(0, len(pos), self.batch_size * 4):  # text is cheap: larger batches
                batch = [texts[i] for i in pos[a : a + self.batch_size * 4]]
                out.append(self._encode("text", data.tokenize(batch, context_length=length)))
            return np.concatenate(out)

        keys = [sha256_text("text", t) for t in texts]
        return self._cached("text", keys, compute)

    def dataset(self, ds: EvalDataset) -> tuple[np.ndarray, list[int]]:
        """Unit embeddings of the loadable items (M, D) and their positions; failures go to `ds.missing`."""
        from bindkit import __version__

        enc, failed, imu = ENCODER_OF[ds.modality], {}, _IMUFiles()

        def compute(pos: list[int]) -> np.ndarray:
            got: dict[int, np.ndarray] = {}
            bar = tqdm(total=len(pos), desc=f"embed {ds.name}", unit="item", disable=not self.progress)
            for a in range(0, len(pos), self.batch_size):
                chunk = pos[a : a + self.batch_size]
                got.update(self._batch(ds, enc, chunk, failed, imu))
                bar.update(len(chunk))
            bar.close()
            if not got:
                reasons = "; ".join(f"{ds.items[i].path}: {r}" for i, r in list(failed.items())[:3])
                raise ValueError(f"{ds.name}: none of {len(pos)} items could be loaded, e.g. {reasons}")
            dim = len(next(iter(got.values())))
            return np.stack([got.get(i, np.full(dim, np.nan, np.float32)) for i in pos])

        salt = f"bindkit-{__version__}"  # a new release may change preprocessing: recompute
        keys = [
            self.cache.item_key(ds.modality, it, salt) if self.cache else str(i)
            for i, it in enumerate(ds.items)
        ]
        emb = self._cached(f"{ds.name}-{ds.modality}", keys, compute)
        ok = [i for i in range(len(ds)) if i not in failed]
        ds.missing += [(str(ds.items[i].path), f"failed to load: {why}") for i, why in sorted(failed.items())]
        return emb[ok], ok

    def _batch(self, ds: EvalDataset, enc: str, chunk: list[int], failed: dict, imu: _IMUFiles) -> dict:
        """{position: embedding} of one batch; positions that failed to load go to `failed` (skip mode)."""
        items = [ds.items[i] for i in chunk]
        loaded = load_inputs(ds.modality, items, self.model, errors=self.on_error, imu=imu)
        if self.on_error == "raise":
            return dict(zip(chunk, self._encode(enc, loaded), strict=True))
        for s in loaded.skipped:
            failed[chunk[s.index]] = s.reason
        kept = loaded.kept(len(chunk))
        if not kept:
            return {}
        return dict(zip((chunk[k] for k in kept), self._encode(enc, loaded.tensor), strict=True))

    def _cached(self, namespace: str, keys: list[str], compute) -> np.ndarray:
        if self.cache is None:
            emb = np.asarray(compute(list(range(len(keys)))), np.float32)
            self.stats.add(CacheStats(misses=len(keys)))
            return emb
        emb, stats = self.cache.get_or_compute(self.model_id, namespace, keys, compute)
        self.stats.add(stats)
        return emb
