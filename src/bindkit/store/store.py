"""The vector store: a LanceDB database (a local folder, or an object-store URI) with one table per model.

Each row is one embedded item: `id` (hash of its path), `path`, `source` (the folder, file or manifest it came from),
`modality` (its kind: image, video, text, audio, depth, thermal, imu), `sha256` of the content, `model`, `mtime`,
`size`, `label`, `meta` (JSON of extra manifest columns), `text` (a text item's content, for display) and `vector`
(unit-norm float32). Search is exact below `INDEX_MIN_ROWS` rows; at or above it an IVF-PQ index is built (and
updated after later writes), searched with `nprobes` partitions and re-ranked exactly over `refine_factor * k`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bindkit.modalities import specs as modality_specs
from bindkit.store.detect import encoder_of, normalize_kind

INDEX_MIN_ROWS = 50_000  # below this an exact scan is fast enough (see docs/search.md)
INDEX_TYPE = "IVF_RQ"  # RaBitQ codes: trains in seconds where PQ takes minutes, same recall after refinement
# 4-bit RaBitQ codes rank well enough that re-ranking 3k candidates reaches recall@10 0.97-0.98 at 1M x 1024;
# the IVF k-means trains on 64 vectors per partition for 20 iterations (minutes at 1M on two cores, not hours).
INDEX_OPTIONS = {"num_bits": 4, "sample_rate": 64, "max_iterations": 20}
NPROBES = 16  # IVF partitions visited per query (tuned by benchmarks/bench_search.py)
REFINE_FACTOR = 3  # exact re-ranking of refine_factor * k quantised candidates
HIT_COLUMNS = (
    "id",
    "path",
    "modality",
    "label",
    "meta",
    "text",
)  # what a result shows (each column fetched costs)
META_COLUMNS = (
    "id",
    "path",
    "source",
    "modality",
    "sha256",
    "model",
    "mtime",
    "size",
    "label",
    "meta",
    "text",
)


def schema(dim: int) -> pa.Schema:
    """The table schema for embeddings of width `dim`."""
    strings = [pa.field(c, pa.string()) for c in ("id", "path", "source", "modality", "sha256", "model")]
    return pa.schema(
        strings
        + [pa.field("mtime", pa.float64()), pa.field("size", pa.int64())]
        + [pa.field(c, pa.string()) for c in ("label", "meta", "text")]
        + [pa.field("vector", pa.list_(pa.float32(), dim))]
    )


def item_id(path: str) -> str:
    """A stable id for an item: the first 16 hex digits of the sha256 of its path."""
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def model_key(model: Any) -> str:
    """Table name for a model: its config name and a fingerprint of its config and output projections."""
    if getattr(model, "store_key", None):  # exported runtimes (bindkit.runtime) carry the key of their weights
        return str(model.store_key)
    return key_of(model.config.to_dict(), {name: enc.head.proj.weight for name, enc in model.encoders.items()})


def key_of(config: dict[str, Any], projections: dict[str, Any]) -> str:
    """`model_key` from a config dict and each encoder's output projection weight (in the config's order)."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name, w in projections.items():  # the projections differ between any two trained models
        h.update(name.encode())
        h.update(w.detach().float().cpu().numpy().tobytes())
    return f"{config['name']}-{h.hexdigest()[:10]}"


def table_names(db: Any) -> list[str]:
    """Every table of a LanceDB connection (following pagination)."""
    names, token = [], None
    while True:
        page = db.list_tables(page_token=token)
        names += list(page.tables)
        token = page.page_token
        if not token:
            return names


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def kinds_filter(modalities: list[str] | tuple[str, ...] | None) -> str | None:
    """SQL restricting rows to some kinds (`vision` means image and video)."""
    if not modalities:
        return None
    kinds: set[str] = set()
    for m in modalities:
        # an encoder's name means every kind it embeds (vision: image and video)
        kinds |= {s.name for s in modality_specs() if s.encoder == m} or {normalize_kind(m)}
    return "modality IN (" + ", ".join(quote(k) for k in sorted(kinds)) + ")"


@dataclass
class Hit:
    """One search result: the item's id, path, kind, cosine similarity to the query, label, metadata and text."""

    id: str
    path: str
    modality: str
    score: float
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def encoder(self) -> str:
        return encoder_of(self.modality)


class Store:
    """One model's table in a LanceDB database at `uri` (created on first use)."""

    def __init__(
        self, uri: str | Path, name: str, dim: int, create: bool = True, refresh_s: float | None = None
    ):
        """`refresh_s`: see other processes' writes at most this many seconds late (None: as of opening)."""
        import lancedb

        self.uri, self.name, self.dim = str(uri), name, dim
        interval = None if refresh_s is None else timedelta(seconds=refresh_s)
        self.db = lancedb.connect(self.uri, read_consistency_interval=interval)
        names = table_names(self.db)
        if not create and name not in names:
            raise FileNotFoundError(
                f"store {uri} has no table {name!r} for this model (tables: {names}); run embed first"
            )
        if name in names:
            self.table = self.db.open_table(name)
            width = self.table.schema.field("vector").type.list_size
            if width != dim:
                raise ValueError(f"table {name!r} in {uri} holds {width}-d vectors, the model gives {dim}")
        else:
            self.table = self._create(name, dim)

    def _create(self, name: str, dim: int) -> Any:
        try:
            return self.db.create_table(name, schema=schema(dim))
        except (ValueError, OSError):  # another rank created it first
            return self.db.open_table(name)

    @classmethod
    def for_model(cls, uri: str | Path, model: Any, table: str | None = None, create: bool = True,
                  refresh_s: float | None = None) -> Store:  # fmt: skip
        """The store's table for `model` (named by `model_key` unless `table` is given)."""
        return cls(uri, table or model_key(model), model.config.out_dim, create, refresh_s)

    def count(self, where: str | None = None) -> int:
        """Number of rows (matching `where`)."""
        return self.table.count_rows(where) if where else self.table.count_rows()

    def rows(self, where: str | None = None, columns: tuple[str, ...] = META_COLUMNS) -> pa.Table:
        """All rows (matching `where`) with the given columns, as an Arrow table."""
        q = self.table.search().select(list(columns)).limit(None)
        return (q.where(where) if where else q).to_arrow()

    def get(self, id: str) -> dict[str, Any] | None:
        """One row's metadata by id, or None."""
        rows = self.rows(f"id = {quote(id)}").to_pylist()
        return rows[0] if rows else None

    def vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors by id."""
        if not ids:
            return {}
        t = self.rows("id IN (" + ", ".join(quote(i) for i in ids) + ")", ("id", "vector"))
        return {
            i: np.asarray(v, dtype=np.float32)
            for i, v in zip(t["id"].to_pylist(), t["vector"].to_pylist(), strict=True)
        }

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Insert rows, replacing those with the same id (one atomic commit)."""
        if rows:
            data = pa.Table.from_pylist(rows, schema=schema(self.dim))
            self.table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
                data
            )

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Add rows as they are (ids must be new: concurrent appends never conflict, upserts may)."""
        if rows:
            self.table.add(pa.Table.from_pylist(rows, schema=schema(self.dim)))

    def delete(self, ids: list[str]) -> None:
        """Remove rows by id."""
        for i in range(0, len(ids), 1000):
            self.table.delete("id IN (" + ", ".join(quote(x) for x in ids[i : i + 1000]) + ")")

    def has_index(self) -> bool:
        """True once the vector column has an ANN index."""
        return any(list(ix.columns) == ["vector"] for ix in self.table.list_indices())

    def ensure_index(self, min_rows: int = INDEX_MIN_ROWS) -> bool:
        """Build the ANN index once the table has `min_rows` rows; True if the table is indexed.

        Rows written after the index was built are searched exactly until `optimize` folds them in.
        """
        if self.has_index():
            return True
        if self.count() < min_rows:
            return False
        self.build_index()
        return True

    def build_index(
        self, index_type: str = INDEX_TYPE, partitions: int | None = None, **options: Any
    ) -> None:
        """(Re)build the ANN index: `IVF_RQ` (default), `IVF_PQ` (dim/8 sub-vectors), `IVF_SQ` or `IVF_HNSW_SQ`.

        `partitions` defaults to n/4096 (about 4096 rows each); `options` go to LanceDB's index config (e.g.
        `sample_rate`, `max_iterations`, `num_sub_vectors`) over `INDEX_OPTIONS`.
        """
        from lancedb import index

        n = self.count()
        partitions = partitions or max(1, round(n / 4096))
        options = {**INDEX_OPTIONS, **options}
        if index_type == "IVF_PQ":
            sub = next(s for s in (self.dim // 8, self.dim // 4, self.dim // 2, 1) if s and self.dim % s == 0)
            options = {"num_sub_vectors": sub, **options}
        classes = {
            "IVF_PQ": index.IvfPq,
            "IVF_RQ": index.IvfRq,
            "IVF_SQ": index.IvfSq,
            "IVF_HNSW_SQ": index.IvfHnswSq,
        }
        if index_type not in classes:
            raise ValueError(f"index_type must be one of {sorted(classes)}, got {index_type!r}")
        cfg = classes[index_type](distance_type="cosine", num_partitions=partitions, **options)
        self.table.create_index("vector", config=cfg, replace=True)
        self.table.create_index(
            "id", config=index.BTree(), replace=True
        )  # `get` and upserts by id without a scan

    def optimize(self) -> None:
        """Compact the per-batch fragments and fold unindexed rows into the index."""
        self.table.optimize()

    def search(self, vector: np.ndarray, k: int = 10, modalities: list[str] | None = None, where: str | None = None,
               nprobes: int = NPROBES, refine_factor: int = REFINE_FACTOR) -> list[Hit]:  # fmt: skip
        """The k rows nearest to `vector` by cosine similarity, optionally of some kinds and matching `where`."""
        if vector.shape != (self.dim,):
            raise ValueError(f"query vector has shape {vector.shape}, the table holds {self.dim}-d vectors")
        clauses = [c for c in (kinds_filter(modalities), where) if c]
        q = (
            self.table.search(vector.astype(np.float32))
            .metric("cosine")  # type: ignore[attr-defined]  # lancedb types Table.search too broadly
            .limit(k)
            .select([*HIT_COLUMNS, "_distance"])
        )
        q = q.nprobes(nprobes).refine_factor(refine_factor)  # ignored without an index: the scan is exact
        if clauses:
            q = q.where(" AND ".join(f"({c})" for c in clauses), prefilter=True)
        return [_hit(r) for r in q.to_arrow().to_pylist()]


def _hit(r: dict[str, Any]) -> Hit:
    meta = json.loads(r["meta"]) if r["meta"] else {}
    return Hit(r["id"], r["path"], r["modality"], 1.0 - float(r["_distance"]), r["label"], meta, r["text"])
