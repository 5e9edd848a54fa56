"""The training loop: one modality pair per step, symmetric InfoNCE against frozen (cached) or trained encoders.

`Trainer(config)` resolves the config, checks the data, builds the model and optimizer, fills the anchor cache and
restores a checkpoint when resuming; `run()` trains and writes the run directory. `train(config)` does both.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

import bindkit.modalities as modalities
from bindkit.checkpoint import save_model
from bindkit.model import ImageBind
from bindkit.train import dist
from bindkit.train.augment import ViewAug, apply_view, view_params
from bindkit.train.build import (
    build_model,
    configure,
    describe_model,
    fit_normalization,
    learnable_scale_owner,
    used_modalities,
)
from bindkit.train.cache import SHARD_ROWS, AnchorCache, fingerprint
from bindkit.train.ckpt import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    truncate_metrics,
)
from bindkit.train.config import TrainConfig, comparable, required, resolve
from bindkit.train.data import FileHasher, FilePairs, PairDataset, TensorPairs, as_dataset
from bindkit.train.lora import merge_lora, save_lora
from bindkit.train.loss import local_clip_loss
from bindkit.train.optim import lr_factor, param_groups, set_lr
from bindkit.train.plots import plot_metrics
from bindkit.train.sampler import Batch, Plan
from bindkit.train.sources import shape_options

PLOT_EVERY_S = 60.0
AUG_VERSION = "rrc-flip-randaug-jitter-v2"  # in the cache fingerprint: bump it when the views change


@dataclass
class RunResult:
    """What a run produced. `model` is the trained model in memory (LoRA merged), in eval mode."""

    run_dir: Path
    step: int  # optimizer steps completed
    total_steps: int
    stopped: bool  # stopped early (the stop event or stop_after) after writing a checkpoint
    checkpoint: Path | None  # newest checkpoint
    model_dir: Path | None  # final/model (bindkit.load_model) when the run finished
    lora_path: Path | None  # final/lora.safetensors when the run trained adapters
    metrics: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # pair -> mean of its last 10 logged values
    model: ImageBind | None = None


@dataclass
class Side:
    """One side of a pair: modality, whether its encoder is frozen, and its cache lookup table (N, views)."""

    modality: str
    frozen: bool
    cache: AnchorCache | None = None
    rows: np.ndarray | None = None


class Trainer:
    """Set-up and loop of one run; see the module docstring."""

    def __init__(self, config: TrainConfig | dict[str, Any] | str | Path, model: ImageBind | None = None):
        cfg = config if isinstance(config, TrainConfig) else (
            TrainConfig.from_dict(config) if isinstance(config, dict) else TrainConfig.load(config))  # fmt: skip
        self.cfg = cfg = resolve(cfg)
        self.datasets = [as_dataset(p.modalities, p.data, p.load_options) for p in cfg.pairs]
        for ds in self.datasets:
            ds.check()  # missing files stop the run here, before any compute
            if isinstance(ds, FilePairs):
                ds.num_workers = cfg.num_workers
        self.device = dist.setup(cfg.device)
        self.run_dir = Path(cfg.run_dir)
        self.model = (model if model is not None else build_model(cfg)).to(self.device)
        missing = [m for m in used_modalities(cfg) if m not in self.model.encoders]
        if missing:
            raise ValueError(f"the model has no {missing} encoder(s); it holds {list(self.model.encoders)}")
        self.modes = configure(self.model, cfg)
        # Before any input is loaded: fitted constants change what the loaders return.
        self.fitted = fit_normalization(self.model, cfg, self.datasets, self.modes)
        self._prepare_run_dir()
        self.optimizer = torch.optim.AdamW(param_groups(self.model, self._group_settings()), betas=cfg.betas,
                                           eps=cfg.eps)  # fmt: skip
        self.plan = Plan([len(d) for d in self.datasets], [required(p.replication) for p in cfg.pairs],
                         [required(p.batch_size) for p in cfg.pairs],
                         [self._views(i) for i in range(len(cfg.pairs))], cfg.seed, dist.rank(), dist.world(),
                         [required(p.name) for p in cfg.pairs])  # fmt: skip
        small = [p.name for p in cfg.pairs if required(p.batch_size) // dist.world() < cfg.grad_accum]
        if small:
            raise ValueError(f"pairs {small}: the per-rank batch is smaller than grad_accum={cfg.grad_accum}")
        self.total, self.warmup = self._schedule()
        self.state = {"step": 0, "epoch": 0, "position": 0}
        # Drop-path draws from torch's generator: one stream per rank.
        torch.manual_seed(cfg.seed + dist.rank())
        if cfg.resume and (ck := latest_checkpoint(self.run_dir)) is not None:
            self.state = load_checkpoint(ck, self.model, self.optimizer, self.device)
        for i, p in enumerate(cfg.pairs):
            if p.augment:  # view parameters derive from the anchor's content hash: compute it once, up front
                self.datasets[i].content_keys(0, self._hasher())
        self.sides = [self._sides(i) for i in range(len(cfg.pairs))]
        if dist.rank() == 0:
            (self.run_dir / "model.json").write_text(
                json.dumps(describe_model(self.model, self.modes), indent=1)
            )
        self.fwd = self._wrap()

    # ------------------------------------------------------------------------------------------------ set-up
    def _prepare_run_dir(self) -> None:
        """Write the resolved config; refuse to overwrite a run, or to resume one with another config."""
        path = self.run_dir / "config.json"
        resolved = self.cfg.to_dict()
        if path.is_file() and self.cfg.resume:
            saved = json.loads(path.read_text())
            diff = sorted(k for k in set(comparable(saved)) | set(comparable(resolved))
                          if comparable(saved).get(k) != comparable(resolved).get(k))  # fmt: skip
            if diff:
                raise ValueError(f"{path}: cannot resume with a different config; changed fields: {diff}")
        elif (self.run_dir / "checkpoints").is_dir() and any((self.run_dir / "checkpoints").iterdir()):
            raise FileExistsError(f"{self.run_dir} already holds a run; pass resume=True to continue it or choose "
                                  "another run_dir")  # fmt: skip
        if dist.rank() == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(resolved, indent=1))
        dist.barrier()

    def _group_settings(self) -> dict[str, tuple[float, float]]:
        """(peak lr, weight decay) per trained encoder, from the first pair that trains it."""
        out: dict[str, tuple[float, float]] = {}
        for p in self.cfg.pairs:
            for m in p.modalities:
                if self.modes[m] != "frozen":
                    out.setdefault(m, (required(p.lr), required(p.weight_decay)))
        return out

    def _views(self, i: int) -> np.ndarray:
        """Views per item: the dataset's own (video times), else the pair's augmented views, else 1."""
        own, p = self.datasets[i].num_views(), self.cfg.pairs[i]
        return np.where(own > 1, own, p.views if p.augment else 1)

    def _schedule(self) -> tuple[int, int]:
        cfg, spe = self.cfg, self.plan.steps_per_epoch
        total = cfg.steps or max(1, round((cfg.epochs or max(required(p.epochs) for p in cfg.pairs)) * spe))
        if cfg.warmup_steps is not None:
            return total, min(cfg.warmup_steps, total)
        warm_epochs = (
            cfg.warmup_epochs if cfg.warmup_epochs is not None
            else max(required(p.warmup_epochs) for p in cfg.pairs)
        )
        # Table 9's warm-up (2 epochs) is kept whole, up to half the run, so a short run still has a decay.
        return total, min(round(warm_epochs * spe), total // 2)

    def _wrap(self) -> torch.nn.Module:
        if not dist.active():
            return self.model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(
            self.model, device_ids=ids, find_unused_parameters=len(self.cfg.pairs) > 1
        )

    def _sides(self, i: int) -> list[Side]:
        """Both sides of pair i; frozen ones get their cache filled (each rank a share) and a row table."""
        p = self.cfg.pairs[i]
        sides = []
        for s, m in enumerate(p.modalities):
            side = Side(m, self.modes[m] == "frozen")
            if side.frozen and self.cfg.cache:
                side.cache, side.rows = self._fill(i, s)
            sides.append(side)
        return sides

    def _cache_keys(self, i: int, s: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Cache keys of every (item, view) of side s of pair i, with their item and view indices."""
        ds, views = self.datasets[i], self._views(i)
        content = ds.content_keys(s, self._hasher())
        items = np.repeat(np.arange(len(ds)), views)
        vs = np.concatenate([np.arange(v) for v in views])
        pairs = zip(items.tolist(), vs.tolist(), strict=True)
        return [f"{content[it]}:{ds.view_name(it, v)}" for it, v in pairs], items, vs

    def _hasher(self) -> FileHasher:
        if not hasattr(self, "_file_hasher"):
            self._file_hasher = FileHasher(self._cache_root() / "file_hashes.jsonl")
        return self._file_hasher

    def _cache_root(self) -> Path:
        default = Path.home() / ".cache" / "bindkit" / "anchors"
        return Path(self.cfg.cache_dir).expanduser() if self.cfg.cache_dir else default

    def _fill(self, i: int, s: int) -> tuple[AnchorCache, np.ndarray]:
        """Open side s's cache, embed what it lacks (the ranks share the work) and map (item, view) -> row."""
        p, m = self.cfg.pairs[i], self.cfg.pairs[i].modalities[s]
        enc = self.model.encoders[m]
        extra = {"input": shape_options(enc.cfg), "load_options": p.load_options.get(m, {}),
                 "precision": self.cfg.precision,
                 "augment": {"seed": self.cfg.seed, "version": AUG_VERSION, **asdict(self._view_aug(i))}
                 if p.augment else None}  # fmt: skip
        cache = AnchorCache(self._cache_root() / f"{m}-{fingerprint(enc, extra)}")
        keys, items, views = self._cache_keys(i, s)
        dist.barrier()  # every rank splits the same list of misses
        cache.reload()
        todo = np.array(cache.missing(keys), dtype=np.int64)
        self._embed_into(cache, i, s, keys, items, views, np.array_split(todo, dist.world())[dist.rank()])
        if dist.rank() == 0:
            self._hasher().save()
        dist.barrier()
        cache.reload()
        left = np.array(cache.missing(keys), dtype=np.int64)  # only if another process raced us
        self._embed_into(cache, i, s, keys, items, views, left)
        rows = np.full((len(self.datasets[i]), int(self._views(i).max())), -1, dtype=np.int64)
        rows[items, views] = cache.rows(keys)
        return cache, rows

    def _embed_into(self, cache: AnchorCache, i: int, s: int, keys: list[str], items: np.ndarray,
                    views: np.ndarray, todo: np.ndarray) -> None:  # fmt: skip
        """Embed entries `todo` of (keys, items, views) with the frozen encoder and store them, one shard per 64k."""
        p = self.cfg.pairs[i]
        bar = tqdm(total=len(todo), desc=f"caching {p.modalities[s]} embeddings ({p.name})", unit="item",
                   disable=not (self.cfg.progress and dist.rank() == 0) or len(todo) == 0)  # fmt: skip
        chunk, done, parts = max(1, min(256, required(p.batch_size))), [], []
        for lo in range(0, len(todo), chunk):
            sel = todo[lo : lo + chunk]
            parts.append(self._embed_frozen(i, s, items[sel], views[sel]).cpu().numpy())
            done.append(sel)
            bar.update(len(sel))
            if sum(map(len, done)) >= SHARD_ROWS or lo + chunk >= len(todo):
                cache.add([keys[j] for j in np.concatenate(done)], np.concatenate(parts))
                done, parts = [], []
        bar.close()

    # ------------------------------------------------------------------------------------------------ a step
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    def _view_aug(self, i: int) -> ViewAug:
        """Pair i's view knobs: crop area range, colour jitter, RandAugment ops / magnitude / noise."""
        p = self.cfg.pairs[i]
        return ViewAug(required(p.crop_scale), required(p.jitter), required(p.randaug),
                       required(p.randaug_magnitude), required(p.randaug_std))  # fmt: skip

    def _load(self, i: int, s: int, items: np.ndarray, views: np.ndarray) -> torch.Tensor:
        """Model inputs of one side with the seeded view augmentation applied (deterministic; thread-safe)."""
        p, ds = self.cfg.pairs[i], self.datasets[i]
        m = p.modalities[s]
        x = ds.load(s, items, views, self.model.encoders[m].cfg)
        if p.augment:
            keys = ds.content_keys(0, self._hasher())
            x = apply_view(
                x, m, view_params([keys[k] for k in items], views, self.cfg.seed, self._view_aug(i))
            )
        return x

    @torch.no_grad()
    def _embed_frozen(self, i: int, s: int, items: np.ndarray, views: np.ndarray) -> torch.Tensor:
        m = self.cfg.pairs[i].modalities[s]
        x = self._load(i, s, items, views).to(self.device, non_blocking=True)
        with self._autocast():
            out = self.model.encoders[m](x)
        return F.normalize(out.float(), dim=-1)

    def _per_step_aug(self, b: Batch, m: str, x: torch.Tensor) -> torch.Tensor:
        """Trained-side augmentation drawn per step (audio frequency masking, depth/thermal random erasing), item k's
        draw seeded by (seed, pair, step, item, view): the same on any number of ranks."""
        p, n = self.cfg.pairs[b.pair], len(b.items)
        seeds = np.stack([np.full(n, self.cfg.seed), np.full(n, b.pair), np.full(n, self.state["step"]),
                          b.items, b.views], 1)  # fmt: skip
        step = modalities.spec(m).step_aug  # e.g. audio frequency masking, depth/thermal erasing
        return x if step is None else modalities.resolve(step)(x, p, seeds)

    def _prepare(self, b: Batch) -> dict[int, torch.Tensor]:
        """Per side: cached unit embeddings (frozen + cached) or model inputs (loaded, view-augmented)."""
        out = {}
        for s, side in enumerate(self.sides[b.pair]):
            if side.cache is not None:
                assert side.rows is not None  # filled with the cache (_sides)
                out[s] = side.cache.gather(side.rows[b.items, b.views])
            else:
                out[s] = self._load(b.pair, s, b.items, b.views)
        return out

    def _scale(self, i: int) -> torch.Tensor | float:
        p = self.cfg.pairs[i]
        if p.temperature == "learnable":
            return self.model.encoders[learnable_scale_owner(self.model, p, self.modes)].post.scale
        t = p.temperature
        assert isinstance(t, (int, float)), t  # resolve() leaves a number or "learnable"
        return 1.0 / float(t)

    def _forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self._autocast():
            out = self.fwd(inputs)
        return {m: F.normalize(y.float(), dim=-1) for m, y in out.items()}

    def forward_backward(self, b: Batch, data: dict[int, torch.Tensor] | None = None) -> tuple[float, float]:
        """Loss and accuracy of one batch with gradients accumulated into .grad (exact full-batch gradients for
        any `grad_accum`, by caching features and re-forwarding each micro-batch). `data`: `_prepare(b)`."""
        i, sides = b.pair, self.sides[b.pair]
        data = self._prepare(b) if data is None else data
        data = {s: v.to(self.device, non_blocking=True) for s, v in data.items()}
        fixed = {s: data[s] if sides[s].cache is not None else None for s in (0, 1)}
        for s in (0, 1):
            if sides[s].frozen and fixed[s] is None:
                with torch.no_grad(), self._autocast():
                    fixed[s] = F.normalize(self.model.encoders[sides[s].modality](data[s]).float(), dim=-1)
        live = [s for s in (0, 1) if not sides[s].frozen]
        inputs = {s: self._per_step_aug(b, sides[s].modality, data[s]) for s in live}
        if self.cfg.grad_accum == 1:
            emb = self._forward({sides[s].modality: inputs[s] for s in live})
            full = [fixed[s] if s not in live else emb[sides[s].modality] for s in (0, 1)]
            assert full[0] is not None and full[1] is not None  # frozen sides were embedded above
            loss, acc = local_clip_loss(full[0], full[1], self._scale(i))
            loss.backward()
            return float(loss.detach()), float(acc)
        return self._accumulate(i, inputs, fixed, live)

    def _accumulate(self, i: int, inputs: dict[int, torch.Tensor], fixed: dict[int, Any], live: list[int]):
        sides, n = self.sides[i], len(next(iter(inputs.values())))
        parts = np.array_split(np.arange(n), self.cfg.grad_accum)
        states, feats = [], {s: list[torch.Tensor]() for s in live}
        with torch.no_grad():  # pass 1: every micro-batch's features, no graph (RNG states kept for replay)
            for rows in parts:
                states.append(rng_state(self.device))
                emb = self._forward({sides[s].modality: inputs[s][rows] for s in live})
                for s in live:
                    feats[s].append(emb[sides[s].modality])
            end = rng_state(self.device)
            full = [fixed[s] if s not in live else torch.cat(feats[s]) for s in (0, 1)]
            loss, acc = local_clip_loss(full[0], full[1], self._scale(i))
        for k, rows in enumerate(parts):  # pass 2: re-forward micro-batch k with a graph, the rest fixed
            set_rng_state(states[k], self.device)
            ddp = self.fwd if isinstance(self.fwd, DistributedDataParallel) else None
            sync = k == len(parts) - 1
            with contextlib.nullcontext() if sync or ddp is None else ddp.no_sync():
                emb = self._forward({sides[s].modality: inputs[s][rows] for s in live})
                cur = [fixed[s] if s not in live else
                       torch.cat([*feats[s][:k], emb[sides[s].modality], *feats[s][k + 1:]]) for s in (0, 1)]  # fmt: skip
                scale = self._scale(i)  # the scale's gradient is counted once, not once per micro-batch
                scale = scale if k == 0 or not torch.is_tensor(scale) else scale.detach()
                local_clip_loss(cur[0], cur[1], scale)[0].backward()
        set_rng_state(end, self.device)
        return float(loss), float(acc)

    def optimizer_step(self, i: int) -> float:
        """Clip the pair's gradients, set the scheduled LR, step, clear gradients; returns the grad norm."""
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        clip = required(self.cfg.pairs[i].grad_clip)
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
        set_lr(self.optimizer, lr_factor(self.state["step"], self.total, self.warmup, self.cfg.min_lr_ratio))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    # ------------------------------------------------------------------------------------------------ the loop
    def _batches(self):
        """(epoch, position, batch) from the saved position on, epoch after epoch."""
        e, start = self.state["epoch"], self.state["position"]
        while True:
            batches = self.plan.epoch(e)
            for pos in range(start, len(batches)):
                yield e, pos, batches[pos]
            e, start = e + 1, 0

    def run(self, stop: threading.Event | None = None) -> RunResult:
        """Train to `total` steps, writing metrics, checkpoints, plots and the final model; once `stop` is set (e.g.
        by `bindkit.process.stop_on(SIGTERM)`), finish the step, checkpoint and return."""
        rank0 = dist.rank() == 0
        if rank0:
            truncate_metrics(self.run_dir / "metrics.jsonl", self.state["step"])
        bar = tqdm(total=self.total, initial=self.state["step"], desc="train", unit="step", dynamic_ncols=True,
                   disable=not (self.cfg.progress and rank0))  # fmt: skip
        self._start_step, self._t0 = self.state["step"], time.perf_counter()
        last: dict[str, list[dict[str, Any]]] = {}
        checkpoint, stopped = latest_checkpoint(self.run_dir), False
        # File datasets load the next batch on a thread while this one trains; in-memory ones need no help.
        pool = None if all(isinstance(d, TensorPairs) for d in self.datasets) else ThreadPoolExecutor(1)
        it = self._batches()
        nxt = next(it)
        pending = pool.submit(self._prepare, nxt[2]) if pool else None
        try:
            with open(self.run_dir / "metrics.jsonl", "a") if rank0 else contextlib.nullcontext() as log:
                while self.state["step"] < self.total:
                    epoch, pos, b = nxt
                    data = pending.result() if pending else None
                    nxt = next(it)
                    pending = pool.submit(self._prepare, nxt[2]) if pool else None
                    self.state["epoch"] = epoch
                    rec = self._train_one(b, data)
                    self.state["position"] = pos + 1
                    last.setdefault(rec["pair"], []).append(rec)
                    self._log(rec, log, bar)
                    halt = dist.any_rank(bool(stop and stop.is_set()) or self._session_done(), self.device)
                    if (
                        halt
                        or self.state["step"] == self.total
                        or self.state["step"] % self.cfg.checkpoint_every == 0
                    ):
                        checkpoint = self._checkpoint(last=halt or self.state["step"] == self.total)
                    if halt and self.state["step"] < self.total:
                        stopped = True
                        break
        finally:
            bar.close()
            if pool:
                pool.shutdown(cancel_futures=True)
        return self._finish(stopped, checkpoint, last)

    def _train_one(self, b: Batch, data: dict[int, torch.Tensor] | None) -> dict[str, Any]:
        """One optimizer step on batch `b`; returns its metrics record (averaged over ranks)."""
        p, step = self.cfg.pairs[b.pair], self.state["step"]
        loss, acc = self.forward_backward(b, data)
        norm = self.optimizer_step(b.pair)
        loss, acc = dist.mean([loss, acc], self.device)
        self.state["step"] += 1
        return {"step": step + 1, "epoch": self.state["epoch"], "pair": p.name, "loss": loss, "acc": acc,
                "grad_norm": norm, "lr_factor": lr_factor(step, self.total, self.warmup, self.cfg.min_lr_ratio),
                "batch": p.batch_size, "time": round(time.perf_counter() - self._t0, 4)}  # fmt: skip

    def _log(self, rec: dict[str, Any], log: Any, bar: tqdm) -> None:
        if log is not None and rec["step"] % self.cfg.log_every == 0:
            log.write(json.dumps(rec) + "\n")
            log.flush()
        bar.update(1)
        bar.set_postfix({rec["pair"]: f"{rec['loss']:.3f}", "acc": f"{rec['acc']:.2f}"}, refresh=False)

    def _session_done(self) -> bool:
        n = self.cfg.stop_after
        return n is not None and self.state["step"] - getattr(self, "_start_step", 0) >= n

    def _checkpoint(self, last: bool) -> Path:
        path = save_checkpoint(self.run_dir, self.model, self.optimizer, dict(self.state), self.device,
                               self.cfg.keep_checkpoints)  # fmt: skip
        # Plots are redrawn at the end and at checkpoints at most once a minute (drawing takes about a second).
        if dist.rank() == 0 and (last or time.monotonic() - getattr(self, "_plotted", -1e9) > PLOT_EVERY_S):
            plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "plots")
            self._plotted = time.monotonic()
        return path

    def _finish(self, stopped: bool, checkpoint: Path | None, last: dict[str, list[dict]]) -> RunResult:
        model_dir = lora_path = None
        if not stopped and dist.rank() == 0:
            final = self.run_dir / "final"
            shutil.rmtree(final, ignore_errors=True)
            final.mkdir(parents=True)
            if "lora" in self.modes.values():
                lora_path = save_lora(self.model, final / "lora.safetensors")
        if not stopped and "lora" in self.modes.values():
            merge_lora(self.model)
        if not stopped and dist.rank() == 0:
            model_dir = save_model(self.model, self.run_dir / "final" / "model")
        dist.barrier()
        summary = {
            k: {m: float(np.mean([r[m] for r in v[-10:]])) for m in ("loss", "acc")} for k, v in last.items()
        }
        return RunResult(self.run_dir, self.state["step"], self.total, stopped, checkpoint, model_dir, lora_path,
                         summary, self.model.eval())  # fmt: skip


def train(config: TrainConfig | dict[str, Any] | str | Path, model: ImageBind | None = None,
          stop: threading.Event | None = None) -> RunResult:  # fmt: skip
    """Train the pairs of `config` (a TrainConfig, its dict, or a JSON file) and return the run's result.

    `model` replaces the one the config describes (it is trained in place). Pairs may hold in-memory datasets
    (`TensorPairs`) instead of manifest paths. Setting `stop` ends the run early at a checkpoint (`Trainer.run`).
    """
    return Trainer(config, model).run(stop)


__all__ = ["RunResult", "Trainer", "train", "PairDataset"]
