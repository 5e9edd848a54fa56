"""Cross-modal retrieval in the CLIP_benchmark convention.

Queries and keys are L2-normalised and scored by cosine; a query counts at K when any of its relevant keys is in
its top K. With several captions per item (Clotho, AudioCaps: 5), each caption is its own text->item query, and an
item->text query counts when any of its captions is retrieved.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bindkit.evaluate.metrics import as_numpy, recall_at_k, relevance_matrix


def cosine_scores(queries, keys) -> torch.Tensor:
    """(Q, N) cosine similarities of L2-normalised rows."""
    q = torch.nn.functional.normalize(torch.as_tensor(as_numpy(queries)).double(), dim=-1)
    k = torch.nn.functional.normalize(torch.as_tensor(as_numpy(keys)).double(), dim=-1)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries have dim {q.shape[-1]} but keys {k.shape[-1]}")
    return q @ k.T


def retrieval(queries, keys, relevant, ks: Sequence[int] = (1, 5, 10), chunk: int = 4096) -> dict[str, float]:
    """Recall@K (%) of `queries` against `keys`; `relevant` is a (Q,) key index, per-query index lists or (Q, N) bool."""
    q, k = as_numpy(queries), as_numpy(keys)
    if len(relevant) != len(q):
        raise ValueError(f"{len(q)} queries but {len(relevant)} relevance entries")
    hits = {kk: 0.0 for kk in ks}
    for a in range(0, len(q), chunk):  # bound memory at chunk x N scores
        s = cosine_scores(q[a : a + chunk], k).numpy()
        rel = relevance_matrix(relevant[a : a + chunk], len(k))
        for kk, v in recall_at_k(s, rel, ks).items():
            hits[kk] += v * len(s)
    out = {f"R@{kk}": hits[kk] / len(q) for kk in ks}
    out["n_queries"] = len(q)
    return out


def flatten_captions(captions: Sequence[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """All captions in one list and, for each, the index of its item (its text->item ground truth)."""
    texts, owner = list[str](), []
    for i, caps in enumerate(captions):
        if not caps:
            raise ValueError(f"item {i} has no caption")
        texts.extend(caps)
        owner.extend([i] * len(caps))
    return texts, np.asarray(owner, dtype=np.int64)


def caption_retrieval(
    item_emb, caption_emb, caption_owner, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, dict[str, float]]:
    """Both directions for items with several captions: text->item (each caption a query) and item->text."""
    owner = as_numpy(caption_owner).astype(np.int64)
    n = len(as_numpy(item_emb))
    if len(owner) != len(as_numpy(caption_emb)):
        raise ValueError(f"{len(as_numpy(caption_emb))} caption embeddings but {len(owner)} owners")
    captions_of = [np.nonzero(owner == i)[0] for i in range(n)]
    missing = [i for i, c in enumerate(captions_of) if len(c) == 0]
    if missing:
        raise ValueError(f"items without captions: {missing[:10]}")
    return {
        "text_to_item": retrieval(caption_emb, item_emb, owner, ks),
        "item_to_text": retrieval(item_emb, caption_emb, captions_of, ks),
    }
