"""`run_eval`: read datasets, embed them once (cached on disk), apply each task's protocol, print and save.

Datasets are read and checked before the model is loaded, so a wrong path fails in seconds. Only the encoders the
tasks need are loaded (text plus each dataset's modality).
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from bindkit.config import canonical
from bindkit.evaluate import protocols as P
from bindkit.evaluate.cache import EmbeddingCache
from bindkit.evaluate.config import EvalConfig, Roots
from bindkit.evaluate.embed import Embedder, Encodes
from bindkit.evaluate.readers.base import EvalDataset
from bindkit.evaluate.report import format_report, table2, write_json
from bindkit.evaluate.tasks import TaskSpec, get_task
from bindkit.evaluate.zeroshot import load_class_names, load_templates
from bindkit.resolve import load, spec_kind

# SHA-256 of the released imagebind_huge.pth (reference §D); paper numbers are shown only for these weights.
OFFICIAL_SHA256 = "d6f6c22bedcc90708448d5d2fbb7b2db9c73f505dc89bd0b2e09b23af1b62157"
OFFICIAL_LOCATIONS = (
    Path(".checkpoints/imagebind_huge.pth"),
    Path.home() / ".cache/bindkit/imagebind_huge.pth",
)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def task_roots(tasks: Sequence[str], root: Roots) -> dict[str, list[Path]]:
    """Root folder(s) per task: one root for all (its `<task>` sub-folder when there), one per task, or a mapping."""
    if isinstance(root, Mapping):
        missing = [t for t in tasks if t not in root]
        if missing:
            raise ValueError(f"no root given for tasks {missing}")
        return {t: [Path(p).expanduser() for p in _as_list(root[t])] for t in tasks}
    roots = [Path(p).expanduser() for p in _as_list(root)]
    if len(tasks) == 1:
        return {tasks[0]: roots}
    if len(roots) == len(tasks):
        return {t: [r] for t, r in zip(tasks, roots, strict=True)}
    if len(roots) == 1:  # a parent of per-dataset folders: <root>/esc50 serves esc50 and esc50-fewshot
        subs = {t: [roots[0] / t, roots[0] / t.split("-")[0]] for t in tasks}
        return {t: [next((d for d in subs[t] if d.is_dir()), roots[0])] for t in tasks}
    raise ValueError(
        f"{len(roots)} roots for {len(tasks)} tasks: give one, one per task, or a task->root mapping"
    )


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def read_task(spec: TaskSpec, roots: list[Path], options: dict[str, Any]) -> list[EvalDataset]:
    """The dataset(s) a task evaluates (two for `folder-pair`), read and checked."""
    kw = {**spec.reader_kwargs, **options}
    for r in roots:
        if not r.exists():
            raise FileNotFoundError(f"task {spec.name}: root {r} does not exist")
    if spec.protocol == "pair":
        if len(roots) != 2:
            raise ValueError(f"task {spec.name} needs two roots (query, gallery), got {len(roots)}")
        mods = _as_list(kw.pop("modality", [None, None]))
        mods = mods * 2 if len(mods) == 1 else mods
        return [
            spec.reader(r, modality=m, name=f"{spec.name}-{i}", **kw)
            for i, (r, m) in enumerate(zip(roots, mods, strict=True))
        ]
    if len(roots) != 1:
        raise ValueError(f"task {spec.name} takes one root, got {len(roots)}")
    return [spec.reader(roots[0], **kw)]


def resolve_model(
    cfg: EvalConfig, modalities: list[str], hasher: EmbeddingCache
) -> tuple[Encodes, dict[str, Any]]:
    """(model, {"id", "label", "official"}) via `bindkit.load`; a config name means its official weights here."""
    model, dtype = cfg.model, compute_dtype(cfg.dtype)
    if isinstance(model, torch.nn.Module):
        if not isinstance(model, Encodes):
            raise TypeError(f"{type(model).__name__} has no encode({{encoder: batch}}) method to embed with")
        mid = cfg.model_id or "module-" + state_dict_hash(model)[:24]
        net = load(model, device=cfg.device)
        return net, {"id": mid, "label": type(model).__name__, "official": False}
    kind = spec_kind(model)
    if kind == "folder":
        files = sorted(p for p in Path(model).iterdir() if p.suffix in (".safetensors", ".json"))
        digest = hashlib.sha256("".join(hasher.file_hash(p) for p in files).encode()).hexdigest()
        net = load(model, modalities, cfg.device, dtype)
        return net, {"id": cfg.model_id or "dir-" + digest[:24], "label": str(model), "official": False}
    name = str(model) if kind == "config" else None
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else Path(model) if kind == "pth" else _find_official()
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} not found")
    digest = hasher.file_hash(ckpt)
    net = load(ckpt, modalities, cfg.device, dtype, config=name)
    info = {"id": cfg.model_id or "pth-" + digest[:24], "label": f"{model} ({ckpt})", "official": digest == OFFICIAL_SHA256}
    return net, info


def compute_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    """The torch dtype of `EvalConfig.dtype` ("fp32", "bf16", their long names, or a dtype); None keeps the model's."""
    if name is None or isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r}: expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def _find_official() -> Path:
    for p in OFFICIAL_LOCATIONS:
        if p.is_file():
            return p
    where = " or ".join(str(p) for p in OFFICIAL_LOCATIONS)
    raise FileNotFoundError(f"imagebind_huge.pth not found at {where}: download it there or pass checkpoint=")


def state_dict_hash(model: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Evaluate `cfg.model` on `cfg.tasks` (names in `evaluate.tasks.TASKS`); prints a table, writes JSON to `out`.

    Paper numbers appear beside ours when the weights are the released imagebind_huge checkpoint (checked by its
    SHA-256), or when `compare_paper=True` (e.g. for an official model passed in as a module)."""
    specs = [get_task(t) for t in cfg.tasks]
    tmpl = load_templates(cfg.templates)
    generic = {"modality": cfg.modality, "class_names": load_class_names(cfg.class_names) if cfg.class_names else None}
    datasets = _read_all(specs, task_roots(list(cfg.tasks), cfg.root), cfg.options, generic, cfg.limit)
    cache = EmbeddingCache(cfg.cache_dir) if cfg.cache else None
    needed = {canonical(d.modality) for dss in datasets.values() for d in dss}
    needed |= {e for s in specs for e in s.encoders}  # what each task's protocol embeds beyond its data
    net, info = resolve_model(cfg, sorted(needed), cache or EmbeddingCache())  # hashing needs only the memo
    if cfg.compare_paper is not None:
        info["official"] = cfg.compare_paper
    emb = Embedder(net, info["id"], cache, cfg.device, compute_dtype(cfg.dtype), cfg.batch_size, cfg.on_error, cfg.progress)
    results = {s.name: _task_result(s, datasets[s.name], emb, tmpl, cfg, info["official"]) for s in specs}
    report = {
        "model": info, "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "settings": {"templates": len(tmpl), "batch_size": cfg.batch_size, "device": str(cfg.device),
                     "shots": list(cfg.shots), "seeds": list(cfg.seeds), "fusion_weights": list(cfg.fusion_weights),
                     "limit": cfg.limit},
        "tasks": results, "table2": table2(results),
    }  # fmt: skip
    if cfg.verbose:
        print(format_report(report))
    if cfg.out is not None:
        path = write_json(report, cfg.out)
        if cfg.verbose:
            print(f"results written to {path}")
    return report


def _task_result(spec: TaskSpec, dss: list[EvalDataset], emb: Embedder, tmpl: list[str], cfg: EvalConfig,
                 official: bool) -> dict[str, Any]:  # fmt: skip
    """One task's entry of the report: its metrics, dataset summary, time and cache use."""
    t0, before = time.perf_counter(), (emb.stats.hits, emb.stats.misses)
    metrics, ds = _run_task(spec, dss, emb, tmpl, cfg.shots, cfg.seeds, cfg.fusion_weights)
    return {
        "description": spec.description, "metric": spec.metric, "paper": spec.paper if official else {},
        "dataset": ds.summary() | {"missing_examples": ds.missing[:5]}, "metrics": metrics,
        "seconds": time.perf_counter() - t0,
        "cache": {"hits": emb.stats.hits - before[0], "misses": emb.stats.misses - before[1]},
    }  # fmt: skip


def _read_all(specs, roots, options, generic, limit) -> dict[str, list[EvalDataset]]:
    """Every task's dataset(s), read and checked (so bad paths fail before the model loads); first `limit` items."""
    out = {}
    for spec in specs:
        opts = dict(options.get(spec.name, {}))
        if "class_names" in inspect.signature(spec.reader).parameters:  # the generic readers take these
            opts = {**generic, **opts}
        dss = read_task(spec, roots[spec.name], opts)
        out[spec.name] = [d.subset(list(range(min(limit, len(d))))) if limit else d for d in dss]
    return out


def _run_task(spec: TaskSpec, dss: list[EvalDataset], emb: Embedder, tmpl, shots, seeds, weights):
    """Embed the task's dataset(s) (failures dropped and listed) and apply its protocol -> (metrics, dataset)."""
    if spec.protocol == "fusion":
        return _run_fusion(dss[0], emb, weights), dss[0]
    embedded = []
    for ds in dss:
        e, ok = emb.dataset(ds)
        embedded.append((ds.subset(ok) if len(ok) < len(ds) else ds, e))
    (ds, e) = embedded[0]
    if spec.protocol == "zeroshot":
        return P.zeroshot_protocol(ds, e, emb.texts, tmpl), dss[0]
    if spec.protocol == "retrieval":
        return P.retrieval_protocol(ds, e, emb.texts), dss[0]
    if spec.protocol == "fewshot":
        return P.fewshot_protocol(ds, e, shots, seeds), dss[0]
    if spec.protocol == "pair":
        return P.pair_protocol(ds, e, *embedded[1]), dss[0]
    raise ValueError(f"unknown protocol {spec.protocol!r}")


def _run_fusion(ds: EvalDataset, emb: Embedder, weights) -> dict:
    """The same items twice, frames through vision and sound through audio, fused item by item."""
    audio = EvalDataset(ds.name, "audio", ds.kind, ds.items, captions=ds.captions, root=ds.root)
    ev, okv = emb.dataset(ds)
    ea, oka = emb.dataset(audio)
    ds.missing += [m for m in audio.missing if m not in ds.missing]
    both = sorted(set(okv) & set(oka))
    pos_v, pos_a = {p: i for i, p in enumerate(okv)}, {p: i for i, p in enumerate(oka)}
    ev, ea = ev[[pos_v[p] for p in both]], ea[[pos_a[p] for p in both]]
    return P.fusion_protocol(ds.subset(both), ev, ea, emb.texts, weights)
