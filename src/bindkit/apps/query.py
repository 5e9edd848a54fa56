"""A query of any modality -> one unit-norm joint-space vector, checked against the model that will use it.

A query is a text (str), a file of any modality (a `Path`; its kind is detected as `bindkit embed` does), or a
`QueryEmbedding` (a vector plus the `model_key` of the model that made it). A bare array is accepted too, checked by
width only. An embedding made by another model is rejected before any compute: its width or its key differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class QueryEmbedding:
    """A joint-space vector and the `bindkit.store.model_key` of the model that made it ("" when unknown)."""

    vector: np.ndarray
    model_key: str = ""


def model_fingerprint(model: Any) -> str:
    """The model's identity as the store names it: config name plus a hash of its config and projections."""
    from bindkit.store.store import model_key

    return model_key(model)


def check_query(model: Any, query: Any) -> None:
    """Reject a query that cannot be used with `model`, before any compute."""
    if isinstance(query, str):
        if not query.strip():
            raise ValueError("a text query needs a non-empty string")
        return
    if isinstance(query, Path):
        if not query.is_file():
            raise FileNotFoundError(f"query file {query} not found")
        return
    vec = query.vector if isinstance(query, QueryEmbedding) else query
    if not isinstance(vec, np.ndarray | torch.Tensor):
        raise TypeError(f"a query is a text, a Path or an embedding, got {type(query).__name__}")
    width = model.config.out_dim
    if tuple(vec.shape) != (width,):
        raise ValueError(f"query embedding has shape {tuple(vec.shape)}; this model's embeddings are ({width},): "
                         "it comes from another model")  # fmt: skip
    if isinstance(query, QueryEmbedding) and query.model_key and query.model_key != model_fingerprint(model):
        raise ValueError(f"query embedding was made by model {query.model_key}, not this one "
                         f"({model_fingerprint(model)})")  # fmt: skip


@torch.no_grad()
def query_embedding(model: Any, query: Any, modality: str | None = None) -> np.ndarray:
    """The unit-norm float32 vector (out_dim,) of a text, a file (of `modality`, or detected) or an embedding."""
    check_query(model, query)
    if isinstance(query, str | Path):
        from bindkit.store.search import embed_query

        kind = "text" if isinstance(query, str) else (modality or "file")
        vec = np.asarray(embed_query(model, None, kind, str(query) if kind != "text" else query), np.float32)
    else:
        raw = query.vector if isinstance(query, QueryEmbedding) else query
        vec = torch.as_tensor(raw).detach().float().cpu().numpy()
    norm = float(np.linalg.norm(vec))
    if not norm > 0 or not np.isfinite(norm):
        raise ValueError("query embedding is zero or not finite")
    return (vec / norm).astype(np.float32)
