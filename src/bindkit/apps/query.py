"""A query of any modality -> one unit-norm joint-space vector, checked against the model that will use it.

The one query type of `locate`, `detect` (class rows from files) and `generate`. A query is

- a text (`str`; always a text, never read as a path);
- a file of any modality (a `Path`; its kind is `modality` when given, else detected as `bindkit embed` does);
- a `QueryEmbedding` (a vector and the `model_key` of the model that made it, "" when unknown);
- a bare array or tensor (D,), checked by width only;
- a list of `(kind, value[, weight])` terms as in `bindkit search` (kind: text, file, a modality name, vector or
  embedding): the weighted sum of their unit embeddings, renormalised (embedding arithmetic: an image plus a sound).

Every term is checked (width, model fingerprint, file present, text non-empty) before any term is embedded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bindkit.resolve import load


@dataclass
class QueryEmbedding:
    """A joint-space vector (D,) and the `bindkit.store.model_key` of the model that made it ("" when unknown)."""

    vector: torch.Tensor  # (D,); an array given here is taken as a tensor
    model_key: str = ""

    def __post_init__(self) -> None:
        self.vector = torch.as_tensor(self.vector)


Embedding = QueryEmbedding  # the name `bindkit.apps.generate` used first


def model_fingerprint(model: Any) -> str:
    """The model's identity as the store names it: config name plus a hash of its config and projections."""
    from bindkit.store.store import model_key

    return model_key(model)


def query_terms(query: Any, modality: str | None = None) -> list[tuple[str, Any, float]]:
    """A query in any accepted form -> (kind, value, weight) terms."""
    if isinstance(query, QueryEmbedding):
        return [("embedding", query, 1.0)]
    if isinstance(query, np.ndarray | torch.Tensor):
        return [("vector", query, 1.0)]
    if isinstance(query, str):
        return [("text", query, 1.0)]
    if isinstance(query, Path):
        return [(modality or "file", query, 1.0)]
    if isinstance(query, list | tuple) and query and all(isinstance(t, list | tuple) and len(t) in (2, 3) for t in query):
        return [(str(t[0]), t[1], float(t[2]) if len(t) > 2 else 1.0) for t in query]
    raise TypeError(f"unsupported query {query!r}: give a text, a Path, a QueryEmbedding, a vector or "
                    "(kind, value, weight) terms")  # fmt: skip


def check_term(model: Any, kind: str, value: Any, key: str | None = None) -> None:
    """Reject one term that cannot be used with `model`, before any compute (`key`: the model's fingerprint)."""
    from bindkit.store.search import query_kinds

    if kind not in (*query_kinds(), "embedding") or kind == "id":
        raise ValueError(f"unknown query kind {kind!r}; use text, file, vector, embedding or a modality name")
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"a text query needs a non-empty string, got {value!r}")
        return
    if kind not in ("vector", "embedding"):
        if not Path(value).is_file():
            raise FileNotFoundError(f"query file {value} not found")
        return
    vec = value.vector if kind == "embedding" else value
    if not isinstance(vec, np.ndarray | torch.Tensor):
        raise TypeError(f"a {kind} query needs an array or a tensor, got {type(vec).__name__}")
    width = model.config.out_dim
    if tuple(vec.shape) != (width,):
        raise ValueError(f"query embedding width {int(np.prod(vec.shape))} does not match the model's {width} "
                         f"(shape {tuple(vec.shape)}, not ({width},)): it comes from another model")  # fmt: skip
    if kind == "embedding" and value.model_key:
        key = key or model_fingerprint(model)
        if value.model_key != key:
            raise ValueError(f"query embedding was made by model {value.model_key}, not this one ({key}): it comes "
                             "from model space other than this model's")  # fmt: skip


def check_query(model: Any, query: Any, modality: str | None = None) -> None:
    """Reject a query that cannot be used with `model`, before any compute."""
    key = model_fingerprint(model)
    for kind, value, _ in query_terms(query, modality):
        check_term(model, kind, value, key)


def _unit(model: Any, kind: str, value: Any) -> torch.Tensor:
    """One checked term's unit embedding (D,), float32 on the CPU."""
    if kind in ("vector", "embedding"):
        raw = value.vector if kind == "embedding" else value
        vec = torch.as_tensor(raw).detach().float().cpu()
    else:
        from bindkit.store.search import embed_term

        vec = torch.from_numpy(np.asarray(embed_term(model, None, kind, value if kind == "text" else str(value)),
                                          np.float32))  # fmt: skip
    norm = float(vec.norm())
    if not norm > 0 or not np.isfinite(norm):
        raise ValueError(f"the {kind} query's embedding is zero or not finite")
    return vec / norm


def term_modality(kind: str, value: Any) -> str | None:
    """The modality of one checked term (a file's detected as `bindkit embed` does); None for a raw vector."""
    from bindkit.store.detect import detect_modality, normalize_kind

    if kind in ("vector", "embedding"):
        return None
    if kind == "text":
        return "text"
    return detect_modality(Path(value)) if kind == "file" else normalize_kind(kind)


Shift = Callable[[torch.Tensor, str | None], torch.Tensor]  # (unit (D,), modality or None) -> unit (D,)


@torch.no_grad()
def embed_query(model: Any, query: Any, modality: str | None = None, shift: Shift | None = None) -> QueryEmbedding:
    """The unit vector (D,) of a query (see the module docstring), with this model's fingerprint; checked first.

    `model` is an `ImageBind` or a bindkit model folder (loaded on the CPU). `shift` (e.g. a generator's
    `MeanShiftPrior.shift`) maps each term's unit embedding, given the term's modality, before the terms are summed."""
    if isinstance(model, str | Path):
        model = load(model)
    key = model_fingerprint(model)
    terms = query_terms(query, modality)
    for kind, value, _ in terms:
        check_term(model, kind, value, key)
    units = [_unit(model, k, v) for k, v, _ in terms]
    if shift is not None:
        units = [shift(u, term_modality(k, v)) for u, (k, v, _) in zip(units, terms, strict=True)]
    total = sum(w * u for u, (_, _, w) in zip(units, terms, strict=True))
    if not isinstance(total, torch.Tensor) or not float(total.norm()) > 1e-6:
        raise ValueError("the weighted query terms cancel out (zero vector)")
    return QueryEmbedding(F.normalize(total, dim=0), key)
