"""Embedding arithmetic and fusion (paper App. B.4 and App. D).

Arithmetic: L2-normalise each embedding, weight (the paper: 0.5 each), sum, and find cosine nearest neighbours.
Fusion: a weighted sum of two modalities' unit embeddings of the same items (the paper: 0.95 video + 0.05 audio
for MSR-VTT), renormalised so that cosine scores against the fused items stay comparable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bindkit.evaluate.metrics import as_numpy


def _unit(x) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.as_tensor(as_numpy(x)).double(), dim=-1)


def compose(embs: Sequence, weights: Sequence[float] | None = None, normalize: bool = True) -> torch.Tensor:
    """Sum of the L2-normalised embeddings (each (D,) or (N, D)) times `weights` (default 1/len each)."""
    if not embs:
        raise ValueError("compose needs at least one embedding")
    weights = list(weights) if weights is not None else [1.0 / len(embs)] * len(embs)
    if len(weights) != len(embs):
        raise ValueError(f"{len(embs)} embeddings but {len(weights)} weights")
    parts = [_unit(e) for e in embs]
    if len({p.shape for p in parts}) != 1:
        raise ValueError(f"embeddings differ in shape: {[tuple(p.shape) for p in parts]}")
    out = sum(w * p for w, p in zip(weights, parts, strict=True))
    assert isinstance(out, torch.Tensor)  # at least one embedding (checked above)
    return torch.nn.functional.normalize(out, dim=-1).float() if normalize else out.float()


def fuse(a, b, weights: tuple[float, float] = (0.95, 0.05), normalize: bool = True) -> torch.Tensor:
    """Per-item fusion of two modalities' embeddings (N, D): w_a * unit(a) + w_b * unit(b), renormalised."""
    if as_numpy(a).shape != as_numpy(b).shape:
        raise ValueError(f"fusion needs equal shapes, got {as_numpy(a).shape} and {as_numpy(b).shape}")
    return compose([a, b], weights, normalize)


def nearest(query, gallery, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine scores and indices (Q, k) of the k nearest gallery rows for each query row (a (D,) query gives Q=1)."""
    q, g = _unit(query), _unit(gallery)
    q = q[None] if q.ndim == 1 else q
    if k > len(g):
        raise ValueError(f"k={k} exceeds the gallery size {len(g)}")
    s, i = (q @ g.T).topk(k, dim=1)
    return s.float(), i


def share_with_attributes(topk_idx, gallery_attrs: Sequence, wanted: Sequence) -> float:
    """Share (%) of top-k results holding every wanted attribute: gallery_attrs[j][n] is attribute j of item n,
    wanted[j][q] the value query q asks for."""
    idx = as_numpy(topk_idx).astype(np.int64)
    if len(gallery_attrs) != len(wanted):
        raise ValueError(f"{len(gallery_attrs)} gallery attributes but {len(wanted)} wanted values")
    ok = np.ones(idx.shape, dtype=bool)
    for attr, want in zip(gallery_attrs, wanted, strict=True):
        attr, want = np.asarray(attr), np.asarray(want)
        if len(want) != len(idx):
            raise ValueError(f"{len(idx)} queries but {len(want)} wanted values")
        ok &= attr[idx] == want[:, None]
    return float(ok.mean() * 100)


def arithmetic(
    a, b, gallery, gallery_attrs: Sequence, wanted: Sequence, weights=(0.5, 0.5), k: int = 5
) -> dict[str, float]:
    """Queries unit(a)*w_a + unit(b)*w_b (rows pair up), their top-k in `gallery`, and the share holding both wanted
    attributes (the demo's scorer); also the same share for a alone and b alone, as baselines."""
    out = {}
    for name, q in (("a+b", compose([a, b], weights)), ("a", _unit(a)), ("b", _unit(b))):
        _, idx = nearest(q, gallery, k)
        out[f"share@{k}[{name}]"] = share_with_attributes(idx, gallery_attrs, wanted)
    out["n_queries"] = len(as_numpy(a)) if as_numpy(a).ndim == 2 else 1
    return out
