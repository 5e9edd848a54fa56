"""Metric functions on score matrices: top-k accuracy, mean per-class recall, average precision, Recall@K.

All take numpy arrays or torch tensors and return percentages (0-100), the unit of the paper's tables.
Ties are counted against the model: an item ranks below every other item with an equal score, so a model that
scores everything alike gets no credit (with float embeddings ties practically never happen).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_numpy(x) -> np.ndarray:
    """A float64/int numpy view of a tensor or array (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.double()
        x = x.numpy()
    return np.asarray(x)


def _check_scores(scores: np.ndarray, n: int, what: str) -> None:
    if scores.ndim != 2:
        raise ValueError(f"{what}: scores must be 2-D (items, classes), got shape {scores.shape}")
    if scores.shape[0] != n:
        raise ValueError(f"{what}: {scores.shape[0]} score rows but {n} labels")
    if not np.isfinite(scores).all():
        bad = np.argwhere(~np.isfinite(scores))[0]
        raise ValueError(f"{what}: non-finite score at item {bad[0]}, class {bad[1]}")


def label_ranks(scores, labels) -> np.ndarray:
    """Rank (0 = best) of each item's true class among its scores; ties rank the true class last.  # (N,)"""
    s, y = as_numpy(scores), as_numpy(labels).astype(np.int64)
    _check_scores(s, len(y), "label_ranks")
    if y.min(initial=0) < 0 or y.max(initial=0) >= s.shape[1]:
        raise ValueError(f"labels must lie in [0, {s.shape[1]}), got range [{y.min()}, {y.max()}]")
    true = s[np.arange(len(y)), y][:, None]  # (N, 1)
    return (s >= true).sum(1) - 1  # other classes scoring at least as high


def topk_accuracy(scores, labels, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Share (%) of items whose true class is among the k best-scored classes, for each k."""
    r = label_ranks(scores, labels)
    return {k: float((r < k).mean() * 100) for k in ks}


def mean_per_class_recall(pred, labels, num_classes: int | None = None) -> float:
    """Mean over the classes present in `labels` of the share (%) of their items predicted right (balanced accuracy)."""
    p, y = as_numpy(pred).astype(np.int64), as_numpy(labels).astype(np.int64)
    if p.shape != y.shape:
        raise ValueError(f"pred {p.shape} and labels {y.shape} differ in shape")
    c = int(num_classes if num_classes is not None else max(p.max(initial=0), y.max(initial=0)) + 1)
    hits = np.bincount(y[p == y], minlength=c)
    count = np.bincount(y, minlength=c)
    present = count > 0
    return float((hits[present] / count[present]).mean() * 100)


def average_precision(scores, targets) -> float:
    """AP (%) of one class: sum over score thresholds of (recall step) x precision, ties grouped (sklearn's rule)."""
    s, t = as_numpy(scores).astype(np.float64), as_numpy(targets).astype(bool)
    if s.shape != t.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and targets {t.shape} must be equal 1-D shapes")
    if not t.any():
        raise ValueError("average_precision: no positive item, AP is undefined")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct score
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall = tp / t.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision) * 100)


def mean_average_precision(scores, targets) -> tuple[float, int]:
    """mAP (%) over the classes that have at least one positive, and how many classes that is."""
    s, t = as_numpy(scores), as_numpy(targets).astype(bool)
    _check_scores(s, t.shape[0], "mean_average_precision")
    if s.shape != t.shape:
        raise ValueError(f"scores {s.shape} and targets {t.shape} differ in shape")
    used = np.nonzero(t.any(0))[0]
    if len(used) == 0:
        raise ValueError("mean_average_precision: no class has a positive item")
    return float(np.mean([average_precision(s[:, c], t[:, c]) for c in used])), len(used)


def multi_hot(labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """(N, C) bool matrix from per-item lists of class indices."""
    out = np.zeros((len(labels), num_classes), dtype=bool)
    for i, ls in enumerate(labels):
        out[i, list(ls)] = True
    return out


def relevance_matrix(relevant, num_keys: int) -> np.ndarray:
    """(Q, N) bool matrix from a bool matrix, one key index per query (Q,), or per-query lists of key indices."""
    if hasattr(relevant, "detach") or isinstance(relevant, np.ndarray):
        arr = as_numpy(relevant)
        if arr.dtype == bool:
            if arr.ndim != 2 or arr.shape[1] != num_keys:
                raise ValueError(f"relevance matrix must be (queries, {num_keys}), got {arr.shape}")
            return arr
        if arr.ndim != 1:
            raise ValueError(f"integer relevance must be 1-D (one key per query), got shape {arr.shape}")
        relevant = arr[:, None]
    rel = np.zeros((len(relevant), num_keys), dtype=bool)
    for q, idx in enumerate(relevant):
        idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
        if len(idx) and (idx.min() < 0 or idx.max() >= num_keys):
            raise ValueError(f"query {q}: relevant index out of range [0, {num_keys}): {idx.tolist()}")
        rel[q, idx] = True
    return rel


def recall_at_k(scores, relevant, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Share (%) of queries with at least one relevant item in their top k (CLIP_benchmark's Recall@K)."""
    s = as_numpy(scores)
    if s.ndim != 2:
        raise ValueError(f"recall_at_k: scores must be 2-D (queries, keys), got shape {s.shape}")
    rel = relevance_matrix(relevant, s.shape[1])
    _check_scores(s, rel.shape[0], "recall_at_k")
    if not rel.any(1).all():
        raise ValueError(f"query {int(np.argmin(rel.any(1)))} has no relevant item")
    best = np.where(rel, s, -np.inf).max(1, keepdims=True)  # (Q, 1) best relevant score
    rank = ((s >= best) & ~rel).sum(1)  # irrelevant items at least as good as the best relevant one
    return {k: float((rank < k).mean() * 100) for k in ks}
