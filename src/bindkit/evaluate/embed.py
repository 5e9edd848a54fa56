"""Dataset items and texts -> unit embeddings with a model, batched, through the on-disk cache.

The only place where evaluation meets `bindkit.data`: each item's file (with its crop box, time window and loader
keywords) goes to the loader of its modality with the sizes of the model's config, then to `model.encode`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from bindkit.config import canonical
from bindkit.evaluate.cache import CacheStats, EmbeddingCache, sha256_text
from bindkit.evaluate.readers.base import EvalDataset, Item


@runtime_checkable
class Encodes(Protocol):
    """What `Embedder` needs of a model (an `ImageBind`, or any module with this method)."""

    def encode(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{encoder: batch} -> {encoder: (B, D) unit rows}."""
        ...


def _encoder_config(model: Any, encoder: str):
    cfg = getattr(model, "config", None)
    return getattr(cfg, "encoders", {}).get(encoder) if cfg is not None else None


def _crop(item: Item) -> Image.Image | Path:
    """The file itself, or its crop box as a PIL image in the file's own mode (16-bit thermal stays 16-bit)."""
    if item.box is None:
        return item.path
    with Image.open(item.path) as im:
        im.load()
        return im.crop(item.box)


class _IMUFiles:
    """Parsed IMU files, the last few kept: windows of one recording are loaded one after another."""

    def __init__(self, keep: int = 4):
        self.keep = keep
        self.table: dict[Path, tuple[np.ndarray | None, np.ndarray]] = {}  # path -> (times or None, [T, 6])

    def window(self, item: Item) -> bytes:
        """The rows of `item.window` (plus one on each side) as .npz bytes holding `t` (s) and `imu` [T, 6]."""
        from bindkit.data.imu import read_imu

        if item.path not in self.table:
            if len(self.table) >= self.keep:
                self.table.pop(next(iter(self.table)))
            time_col = "canonical_timestamp_ms" if item.path.suffix == ".csv" else None
            self.table[item.path] = read_imu(item.path, time_column=time_col)
        t, x = self.table[item.path]
        if t is None:
            raise ValueError("the file has no time stamps, so a time window cannot be cut from it")
        if item.window is None:
            raise ValueError("the item has no time window to cut")
        start, end = item.window
        inside = np.nonzero((t >= start) & (t < end))[0]
        if len(inside) < 2 or t[inside[-1]] - t[inside[0]] < 0.5 * (end - start):
            raise ValueError(f"IMU samples cover under half of the window {start:.1f}-{end:.1f} s")
        sl = slice(max(inside[0] - 1, 0), inside[-1] + 2)
        buf = io.BytesIO()
        np.savez(buf, t=t[sl], imu=x[sl])
        return buf.getvalue()


def _prepare(items: Sequence[Item], fn) -> tuple[list, list[int], list]:
    """Apply `fn` per item; (prepared inputs, their positions, Skipped for the items `fn` failed on)."""
    from bindkit.data import Skipped

    ready, pos, bad = [], [], []
    for i, it in enumerate(items):
        try:
            ready.append(fn(it))
            pos.append(i)
        except Exception as e:  # reported per item below, never dropped silently
            bad.append(Skipped(i, str(it.path), f"{type(e).__name__}: {e}"))
    return ready, pos, bad


def _same(items: Sequence[Item], key: str, default: Any = None) -> Any:
    vals = {it.kwargs.get(key, default) for it in items}
    if len(vals) != 1:
        raise ValueError(f"items of one batch differ in {key}: {sorted(map(str, vals))}")
    return vals.pop()


def load_items(
    modality: str, items: Sequence[Item], model: Any, errors: str = "raise", imu: _IMUFiles | None = None
):
    """Model input for items of one modality via `bindkit.data.load` (sizes and constants from the model's config):
    a tensor, or with errors="skip" a `LoadResult` whose skipped indices refer to `items`."""
    import bindkit.data as data

    config = getattr(model, "config", None)
    kw: dict[str, Any] = {}
    prep: Callable[[Item], Any]
    if modality in ("vision", "thermal"):
        prep = _crop
    elif modality == "imu" and items and items[0].window is not None:
        imu = imu or _IMUFiles()
        prep = imu.window
        windows = [it.window for it in items if it.window is not None]
        if len(windows) != len(items):
            raise ValueError("IMU items of one batch mix time windows and whole files")
        spans = {round(w[1] - w[0], 9) for w in windows}
        if len(spans) != 1:
            raise ValueError(f"IMU windows of one batch differ in length: {sorted(spans)}")
        kw = {"start": [w[0] for w in windows], "duration": spans.pop()}
    else:
        prep = lambda it: it.path  # noqa: E731
    if (
        modality == "depth"
    ):  # per-map camera geometry from the reader (SUN RGB-D: per sensor); else the defaults
        kw = {k: [it.kwargs[k] for it in items] for k in ("focal_length", "baseline") if k in items[0].kwargs}
        if "encoding" in items[0].kwargs:
            kw["encoding"] = _same(items, "encoding")
    ready, pos, bad = _prepare(items, prep)
    if bad and errors == "raise":
        raise data.LoadError(modality, len(items), bad)
    kw = {k: [v[i] for i in pos] if isinstance(v, list) else v for k, v in kw.items()}
    out = data.load(modality, ready, config=config, errors=errors, **kw) if ready else None
    if errors == "raise":
        return out
    if out is None:
        return data.LoadResult(torch.empty(0), bad)
    skipped = [s._replace(index=pos[s.index]) for s in out.skipped]  # back to positions in `items`
    return data.LoadResult(out.tensor, sorted(bad + skipped))


class Embedder:
    """Embeds datasets and texts with one model; `model.encode({encoder: batch})` must return unit rows."""

    def __init__(
        self,
        model: Encodes,
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
        import bindkit.data as data

        enc = _encoder_config(self.model, "text")
        length = enc.input_shape[0] if enc is not None and enc.input_shape else 77

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
        from bindkit.version import __version__

        enc, failed, imu = canonical(ds.modality), dict[int, str](), _IMUFiles()

        def compute(pos: list[int]) -> np.ndarray:
            got: dict[int, np.ndarray] = {}
            # closed on an error too, so that the error starts on a line of its own
            with tqdm(total=len(pos), desc=f"embed {ds.name}", unit="item", disable=not self.progress) as bar:
                for a in range(0, len(pos), self.batch_size):
                    chunk = pos[a : a + self.batch_size]
                    got.update(self._batch(ds, enc, chunk, failed, imu))
                    bar.update(len(chunk))
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
        loaded = load_items(ds.modality, items, self.model, errors=self.on_error, imu=imu)
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
