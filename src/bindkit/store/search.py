"""Search a store with text, a file of any modality, a stored item, or a weighted sum of several (arithmetic).

A query is `(kind, value, weight)`: kind `text` (value: a string), `file` (a path; its modality is detected as in
`embed`), a modality name such as `audio` or `depth` (a path read as that modality), `id` (an item already in the
store: its stored vector) or `vector` (an array). The query vector is the weighted sum of the unit-norm embeddings,
renormalised, so `[("image", "dog.jpg", 1), ("text", "snow", 1)]` finds dogs in snow and a negative weight
subtracts a concept. Results are the k nearest items by cosine similarity, optionally only of chosen modalities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bindkit.model import ImageBind
from bindkit.resolve import load_for
from bindkit.store.detect import detect_modality, encoder_of, kinds, normalize_kind
from bindkit.store.inputs import load_inputs
from bindkit.store.store import NPROBES, REFINE_FACTOR, Hit, Store


def query_kinds() -> tuple[str, ...]:
    """Kinds of query term: text, file, id, vector, or a modality name (`vision` means image)."""
    return ("text", "file", "id", "vector", "vision", *kinds())


class QueryError(ValueError):
    """A query that cannot be embedded; the message names the query and the reason."""


def embed_item(model: Any, kind: str, item: Any) -> np.ndarray:
    """One item of a known kind (a path, or a string for text) -> its unit-norm embedding (out_dim,)."""
    name = encoder_of(kind)
    enc = model.config.encoders.get(name)
    if enc is None:
        raise QueryError(f"{item}: the model has no {name} encoder")
    res = load_inputs(kind, [item], enc)
    if res.skipped:
        raise QueryError(f"{item}: {res.skipped[0].reason}")
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else "cpu"
    return model.encode({name: res.tensor.to(device)})[name][0].cpu().numpy()


def embed_term(model: Any, store: Store | None, kind: str, value: Any) -> np.ndarray:
    """The embedding of one query term (see the module docstring for the kinds)."""
    if kind not in query_kinds():
        raise QueryError(f"unknown query kind {kind!r}; use one of {', '.join(query_kinds())}")
    if kind == "vector":
        return np.asarray(value, dtype=np.float32)
    if kind == "id":
        vec = store.vectors([str(value)]).get(str(value)) if store is not None else None
        if vec is None:
            raise QueryError(f"no item with id {value!r} in the store")
        return vec
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise QueryError(f"a text query needs a non-empty string, got {value!r}")
        return embed_item(model, "text", value)
    path = Path(value)
    if not path.is_file():
        raise QueryError(f"{value}: file not found")
    try:
        kind = detect_modality(path) if kind == "file" else normalize_kind(kind)
    except ValueError as e:
        raise QueryError(f"{value}: {e}") from e
    return embed_item(model, kind, path)


def query_vector(model: Any, store: Store | None, queries: list[tuple[str, Any, float]]) -> np.ndarray:
    """The renormalised weighted sum of the queries' embeddings."""
    if not queries:
        raise QueryError("no query given")
    total = None
    for kind, value, weight in queries:
        v = float(weight) * embed_term(model, store, kind, value)
        total = v if total is None else total + v
    assert total is not None  # at least one query (checked above)
    norm = float(np.linalg.norm(total))
    if not norm > 1e-6:
        raise QueryError("the weighted queries cancel out (zero vector)")
    return (total / norm).astype(np.float32)


def search(store_dir: str | Path, model: ImageBind | str | Path, queries: list[tuple[str, Any, float]],
           modalities: list[str] | None = None, k: int = 10, where: str | None = None, table: str | None = None,
           nprobes: int = NPROBES, refine_factor: int = REFINE_FACTOR, backend: str = "torch") -> list[Hit]:  # fmt: skip
    """The k items of `store_dir` nearest to the weighted queries, of the chosen modalities (all by default).

    `backend` runs a model folder on OpenVINO or ONNX Runtime (`bindkit.load_model`)."""
    if k < 1:
        raise QueryError(f"k must be at least 1, got {k}")
    if "://" not in str(store_dir) and not Path(store_dir).is_dir():  # a local store: never create it by reading
        raise FileNotFoundError(f"{store_dir}: no store there (make one with `bindkit embed`)")
    net = load_for(model, backend)
    store = Store.for_model(store_dir, net, table, create=False)
    vec = query_vector(net, store, queries)
    return store.search(vec, k, modalities, where, nprobes, refine_factor)
