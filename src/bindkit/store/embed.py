"""`embed_paths`: walk folders and manifests, embed new or changed files in batches, and keep the store in step.

A run is idempotent and resumable. Each file's size and mtime are compared with the stored row; only when they
differ is the content hashed, and only a new hash (or kind) is re-embedded; a file whose content is unchanged only
has its metadata refreshed. Rows of files that are gone from a walked folder or manifest are dropped. Every batch
is committed on its own, so an interrupted run keeps what it wrote and the next run continues from there. Files
that cannot be read are listed in the report, never fatal.

Under torchrun (`bindkit embed` opens the process group and passes rank and world size) rank 0 plans, every rank embeds its shard
`todo[rank::world]` and appends to the same table (LanceDB commits concurrent writes), and rank 0 indexes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

import bindkit.modalities as modalities
from bindkit.model import ImageBind
from bindkit.resolve import load_for
from bindkit.store.collect import Entry, collect
from bindkit.store.detect import encoder_of
from bindkit.store.inputs import load_inputs, per_item
from bindkit.store.store import INDEX_MIN_ROWS, Store, item_id

if TYPE_CHECKING:
    from bindkit.runtime.backends import RuntimeModel


@dataclass
class EmbedReport:
    """What a run did. `failed` and `skipped` hold (item, reason): unreadable files, and files of unknown kind."""

    store: str
    table: str
    total: int = 0
    embedded: int = 0
    unchanged: int = 0
    updated: int = 0  # same content, metadata refreshed
    deleted: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    indexed: bool = False
    rows: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for the terminal, listing every failed and skipped item."""
        lines = [
            f"store {self.store} table {self.table}: {self.rows} rows{' (ANN index)' if self.indexed else ''}",
            f"{self.total} items: {self.embedded} embedded, {self.unchanged} unchanged, {self.updated} metadata "
            f"updated, {self.deleted} deleted, {len(self.failed)} failed, {len(self.skipped)} skipped "
            f"in {self.seconds:.1f} s",
        ]
        lines += [f"  failed  {p}: {r}" for p, r in self.failed]
        lines += [f"  skipped {p}: {r}" for p, r in self.skipped]
        return "\n".join(lines)


def sha256_of(e: Entry) -> str:
    """Content hash of an entry (its file in 1 MiB chunks, or its inline text)."""
    if e.text is not None:
        return hashlib.sha256(e.text.encode()).hexdigest()
    h = hashlib.sha256()
    with open(e.path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _peek_text(e: Entry, limit: int = 1000) -> str:
    """The start of a text file, shown with search results."""
    with open(e.path, encoding="utf-8", errors="replace") as f:
        return f.read(limit).strip()


def record(e: Entry, model_name: str) -> dict[str, Any]:
    """An entry's row without `sha256` and `vector`."""
    if e.text is not None:
        size, mtime = len(e.text.encode()), 0.0
    else:
        st = os.stat(e.path)
        size, mtime = st.st_size, st.st_mtime
    text = e.text if e.text is not None else _peek_text(e) if modalities.spec(e.kind).text_items else ""
    return dict(id=item_id(e.path), path=e.path, source=e.source, modality=e.kind, model=model_name, mtime=mtime,
                size=size, label=e.label, meta=json.dumps(e.meta, sort_keys=True, default=str), text=text)  # fmt: skip


def _under(row: dict[str, Any], roots: list[str]) -> bool:
    p = row["path"]
    return any(p == r or p.startswith(r + os.sep) or row["source"] == r for r in roots)


def plan(store: Store, entries: list[Entry], roots: list[str]) -> dict[str, Any]:
    """Compare entries with the table: what to embed, what to refresh, which rows to drop."""
    old = {r["path"]: r for r in store.rows().to_pylist()}
    todo, touch, unchanged, failed = [], [], 0, []
    for e in entries:
        try:
            rec, prev = record(e, store.name), old.get(e.path)
            same_file = (
                prev
                and prev["modality"] == e.kind
                and (prev["size"], prev["mtime"]) == (rec["size"], rec["mtime"])
            )
            rec["sha256"] = prev["sha256"] if prev is not None and same_file and e.text is None else sha256_of(e)
        except OSError as err:
            failed.append((e.path, f"unreadable ({err.strerror or err})"))
            continue
        if prev and prev["sha256"] == rec["sha256"] and prev["modality"] == e.kind:
            keys = ("source", "mtime", "size", "label", "meta")
            if all(prev[k] == rec[k] for k in keys):
                unchanged += 1
            else:
                touch.append(rec)
            continue
        todo.append((e, rec))
    current = {e.path for e in entries}
    stale = [r["id"] for p, r in old.items() if p not in current and _under(r, roots)]
    changed = [rec["id"] for e, rec in todo if e.path in old]
    return dict(todo=todo, touch=touch, stale=stale, changed=changed, unchanged=unchanged, failed=failed)


def _touch(store: Store, recs: list[dict[str, Any]]) -> None:
    """Rewrite rows whose content is unchanged, keeping their stored vectors."""
    vecs = store.vectors([r["id"] for r in recs])
    store.upsert([{**r, "vector": vecs[r["id"]].tolist()} for r in recs if r["id"] in vecs])


def _number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def _load(model: Any, batch: list[tuple[Entry, dict]]) -> Any:
    """Load one same-kind batch; a batch-wide problem (no loader, no encoder) becomes every item's failure."""
    kind = batch[0][0].kind
    try:
        enc = model.config.encoders.get(encoder_of(kind))
        if enc is None:
            raise KeyError(f"the model has no {encoder_of(kind)} encoder")
        options = {k: [_number(e.meta.get(k)) for e, _ in batch] for k in per_item(kind)}
        return load_inputs(kind, [e.item for e, _ in batch], enc, options)
    except Exception as err:  # listed per item by the caller, never fatal
        return err


def _write(
    model: Any, store: Store, batch: list[tuple[Entry, dict]], res: Any, append: bool
) -> list[tuple[str, str]]:
    """Encode a loaded batch and commit its rows (an upsert by id, or a plain append); returns the failures."""
    if isinstance(res, Exception):
        return [(e.path, f"{type(res).__name__}: {res}") for e, _ in batch]
    failed = [(batch[s.index][0].path, s.reason) for s in res.skipped]
    keep = res.kept(len(batch))
    if not keep:
        return failed
    name = encoder_of(batch[0][0].kind)
    device = next(model.parameters()).device if isinstance(model, torch.nn.Module) else "cpu"
    try:
        vecs = model.encode({name: res.tensor.to(device)})[name].cpu().numpy()
    except Exception as err:  # e.g. an input the encoder rejects: listed, not fatal
        return failed + [(batch[i][0].path, f"{type(err).__name__}: {err}") for i in keep]
    rows = [{**batch[i][1], "vector": v.tolist()} for i, v in zip(keep, vecs, strict=True)]
    store.append(rows) if append else store.upsert(rows)
    return failed


def _batches(todo: list[tuple[Entry, dict]], batch_size: int) -> list[list[tuple[Entry, dict]]]:
    """Same-kind batches of at most `batch_size`, kinds in a fixed order."""
    out = []
    for _, group in groupby(sorted(todo, key=lambda t: t[0].kind), key=lambda t: t[0].kind):
        items = list(group)
        out += [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    return out


def embed_entries(model: Any, store: Store, todo: list[tuple[Entry, dict]], batch_size: int = 32,
                  progress: bool = True, desc: str = "embed", append: bool = False) -> list[tuple[str, str]]:  # fmt: skip
    """Embed and write `todo` batch by batch (the next batch loads while this one encodes); returns failures.

    `append=True` adds rows without matching ids (for ranks writing concurrently: appends never conflict).
    """
    batches = _batches(todo, batch_size)
    failed: list[tuple[str, str]] = []
    with (
        tqdm(total=len(todo), unit="item", desc=desc, disable=not progress) as bar,
        ThreadPoolExecutor(1) as pool,
    ):
        nxt = pool.submit(_load, model, batches[0]) if batches else None
        for i, batch in enumerate(batches):
            assert nxt is not None  # submitted before the loop or in the previous iteration
            res = nxt.result()
            if i + 1 < len(batches):
                nxt = pool.submit(_load, model, batches[i + 1])
            failed += _write(model, store, batch, res, append)
            bar.update(len(batch))
    return failed


def _share(obj: Any, rank: int, world: int) -> Any:
    """Rank 0's object on every rank."""
    if world == 1:
        return obj
    import torch.distributed as dist

    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _gather(items: list, world: int) -> list:
    """Concatenate a list from every rank."""
    if world == 1:
        return items
    import torch.distributed as dist

    out: list[list] = [[] for _ in range(world)]
    dist.all_gather_object(out, items)
    return [x for part in out for x in part]


def embed_paths(paths: list[str | Path], store_dir: str | Path, model: ImageBind | RuntimeModel | str | Path,
                modality: str | None = None, batch_size: int = 32, table: str | None = None,
                device: str | torch.device | None = None, index_min_rows: int = INDEX_MIN_ROWS, progress: bool = True,
                follow_links: bool = False, rank: int = 0, world: int = 1,
                backend: str = "torch") -> EmbedReport:  # fmt: skip
    """Embed the files under `paths` (folders, files, manifests) into `store_dir`; see the module docstring.

    Symbolic links under a folder that lead out of it are listed as skipped unless `follow_links`. `rank`/`world`
    place this process in a process group its entry point opened (`bindkit.process.distributed`). `backend` runs a
    model folder on OpenVINO or ONNX Runtime (`bindkit.load_model`).
    """
    t0 = time.perf_counter()
    if world > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise RuntimeError(f"world={world} needs an open process group: see bindkit.process.distributed()")
    net = load_for(model, backend, device)
    store = Store.for_model(store_dir, net, table)
    report = EmbedReport(store=str(store_dir), table=store.name)
    work = _plan_rank0(store, report, paths, modality, follow_links, world) if rank == 0 else None
    todo = _share(work["todo"] if work else None, rank, world)
    desc = "embed" if world == 1 else f"embed (rank 0 of {world})"
    failed = embed_entries(
        net, store, todo[rank::world], batch_size, progress and rank == 0, desc, world > 1
    )
    failed = _gather(failed, world)
    if rank == 0:
        assert work is not None  # rank 0 planned it above
        _finish_rank0(store, report, work, len(todo), failed, index_min_rows)
    report = _share(report, rank, world)
    report.seconds = time.perf_counter() - t0
    return report


def _plan_rank0(store: Store, report: EmbedReport, paths: list[str | Path], modality: str | None,
                follow_links: bool, world: int) -> dict:  # fmt: skip
    """List the files, plan what to embed, and apply the deletions and touches; fills the report's counts."""
    entries, report.skipped, roots, unreadable = collect(list(paths), modality, follow_links)
    work = plan(store, entries, roots)
    # ranks append concurrently, so the old rows of changed files go first (they are re-added below)
    store.delete(work["stale"] + (work["changed"] if world > 1 else []))
    _touch(store, work["touch"])
    report.total, report.unchanged = len(entries) + len(unreadable), work["unchanged"]
    report.updated, report.deleted = len(work["touch"]), len(work["stale"])
    report.failed = unreadable + work["failed"]
    return work


def _finish_rank0(store: Store, report: EmbedReport, work: dict, n_todo: int, failed: list,
                  index_min_rows: int) -> None:  # fmt: skip
    """Record what was embedded and failed, drop the rows of files that now fail, compact and index the store."""
    report.embedded = n_todo - len(failed)
    report.failed += failed
    # a file that changed and now fails must not keep its old vector
    store.delete([item_id(p) for p, _ in report.failed])
    if n_todo or work["stale"] or work["touch"]:
        store.optimize()
    report.indexed = store.ensure_index(index_min_rows)
    report.rows = store.count()
