"""`run_eval`: read datasets, embed them once (cached on disk), apply each task's protocol, print and save.

Datasets are read and checked before the model is loaded, so a wrong path fails in seconds. Only the encoders the
tasks need are loaded (text plus each dataset's modality).
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from bindkit.config import canonical
from bindkit.evaluate import protocols as P
from bindkit.evaluate.cache import EmbeddingCache
from bindkit.evaluate.embed import Embedder
from bindkit.evaluate.readers.base import EvalDataset
from bindkit.evaluate.report import format_report, table2, write_json
from bindkit.evaluate.tasks import TaskSpec, get_task
from bindkit.evaluate.zeroshot import load_class_names, load_templates

# SHA-256 of the released imagebind_huge.pth (reference §D); paper numbers are shown only for these weights.
OFFICIAL_SHA256 = "d6f6c22bedcc90708448d5d2fbb7b2db9c73f505dc89bd0b2e09b23af1b62157"
OFFICIAL_LOCATIONS = (
    Path(".checkpoints/imagebind_huge.pth"),
    Path.home() / ".cache/bindkit/imagebind_huge.pth",
)

Roots = str | Path | Sequence[str | Path] | Mapping[str, Any]


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
    model: str | Path | torch.nn.Module,
    modalities: list[str],
    cache: EmbeddingCache | None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    checkpoint: str | Path | None = None,
    model_id: str | None = None,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model, {"id", "label", "official"}) from a module, a `save_model` folder, an official `.pth`, or a name."""
    import bindkit

    hasher = cache or EmbeddingCache()  # hashing files needs only the memo, not stored embeddings
    if isinstance(model, torch.nn.Module):
        mid = model_id or "module-" + state_dict_hash(model)[:24]
        return model.to(device).eval(), {"id": mid, "label": type(model).__name__, "official": False}
    path = Path(model)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".json"))
        mid = (
            model_id
            or "dir-" + hashlib.sha256("".join(hasher.file_hash(p) for p in files).encode()).hexdigest()[:24]
        )
        m = bindkit.load_model(path, modalities=modalities, device=device, dtype=dtype)
        return m, {"id": mid, "label": str(path), "official": False}
    if path.suffix in (".pth", ".pt") or str(model) in bindkit.list_configs():
        config = bindkit.get_config(str(model)) if str(model) in bindkit.list_configs() else None
        ckpt = (
            Path(checkpoint) if checkpoint else (path if path.suffix in (".pth", ".pt") else _find_official())
        )
        if not ckpt.is_file():
            raise FileNotFoundError(f"checkpoint {ckpt} not found")
        digest = hasher.file_hash(ckpt)
        m = bindkit.load_official_checkpoint(
            ckpt, config=config, modalities=modalities, device=device, dtype=dtype
        )
        official = digest == OFFICIAL_SHA256
        return m, {"id": model_id or "pth-" + digest[:24], "label": f"{model} ({ckpt})", "official": official}
    raise FileNotFoundError(
        f"model {model!r} is not a module, a model folder, a .pth file or a known config name"
    )


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


def run_eval(
    tasks: Sequence[str],
    root: Roots,
    model: str | Path | torch.nn.Module,
    *,
    out: str | Path | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    batch_size: int = 32,
    templates: str | Path | Sequence[str] | None = None,
    class_names: str | Path | None = None,
    modality: str | Sequence[str] | None = None,
    shots: Sequence[int] = (1, 2, 4, 8),
    seeds: Sequence[int] = (0, 1, 2),
    fusion_weights: tuple[float, float] = (0.95, 0.05),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoint: str | Path | None = None,
    model_id: str | None = None,
    on_error: str = "raise",
    limit: int | None = None,
    compare_paper: bool | None = None,
    progress: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Evaluate `model` on `tasks` (names in `evaluate.tasks.TASKS`); prints a table, writes JSON to `out`.

    Paper numbers appear beside ours when the weights are the released imagebind_huge checkpoint (checked by its
    SHA-256), or when `compare_paper=True` (e.g. for an official model passed in as a module)."""
    specs = [get_task(t) for t in tasks]
    tmpl = load_templates(templates)
    names = load_class_names(class_names) if class_names else None
    generic = {"modality": modality, "class_names": names}
    datasets = _read_all(specs, task_roots(list(tasks), root), options or {}, generic, limit)
    cache = EmbeddingCache(cache_dir) if use_cache else None
    needed = sorted({canonical(d.modality) for dss in datasets.values() for d in dss} | {"text"})
    if any(s.name == "msrvtt-av" for s in specs):
        needed = sorted(set(needed) | {"audio", "vision"})
    net, info = resolve_model(model, needed, cache, device, dtype, checkpoint, model_id)
    if compare_paper is not None:
        info["official"] = compare_paper
    emb = Embedder(net, info["id"], cache, device, dtype, batch_size, on_error, progress)
    results = {}
    for spec in specs:
        t0, before = time.perf_counter(), (emb.stats.hits, emb.stats.misses)
        metrics, ds = _run_task(spec, datasets[spec.name], emb, tmpl, shots, seeds, fusion_weights)
        results[spec.name] = {
            "description": spec.description, "metric": spec.metric, "paper": spec.paper if info["official"] else {},
            "dataset": ds.summary() | {"missing_examples": ds.missing[:5]}, "metrics": metrics,
            "seconds": time.perf_counter() - t0,
            "cache": {"hits": emb.stats.hits - before[0], "misses": emb.stats.misses - before[1]},
        }  # fmt: skip
    report = {
        "model": info, "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "settings": {"templates": len(tmpl), "batch_size": batch_size, "device": str(device), "shots": list(shots),
                     "seeds": list(seeds), "fusion_weights": list(fusion_weights), "limit": limit},
        "tasks": results, "table2": table2(results),
    }  # fmt: skip
    if verbose:
        print(format_report(report))
    if out is not None:
        path = write_json(report, out)
        if verbose:
            print(f"results written to {path}")
    return report


def _read_all(specs, roots, options, generic, limit) -> dict[str, list[EvalDataset]]:
    """Every task's dataset(s), read and checked (so bad paths fail before the model loads); first `limit` items."""
    out = {}
    for spec in specs:
        opts = dict(options.get(spec.name, {}))
        if spec.reader.__name__ in ("read_folder", "read_labels_csv"):  # the generic readers take these
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
