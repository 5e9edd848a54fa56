"""Training configs as plain dataclasses, with the paper's per-pair defaults (Table 9) filled in by `resolve`.

A `TrainConfig` lists the modality pairs of a run; each `PairConfig` names (anchor, other) modalities and its data.
Fields left at `None` take the Table 9 value of the pair's non-anchor modality when `resolve` runs, so the resolved
config written to a run directory always holds concrete numbers. No torch import here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bindkit.config import canonical

MODES = ("train", "frozen", "lora")
PRECISIONS = ("fp32", "bf16")

# Table 9's image views ("RRC 224 bilinear, HFlip .5, RandErase .25, RandAug 9/0.5, ColorJitter .4"; RandAugment as
# timm's rand-m9-mstd0.5: 2 ops per image, each with probability 0.5): on for the depth and thermal pairs; the other
# rows keep `augment` off but hold the same view knobs, used if a config turns it on.
VIEWS: dict[str, Any] = dict(
    crop_scale=(0.08, 1.0), jitter=0.4, randaug=2, randaug_magnitude=9.0, randaug_std=0.5
)
AUG_ON: dict[str, Any] = dict(augment=True, erase=0.25, **VIEWS)
AUG_OFF: dict[str, Any] = dict(augment=False, erase=0.0, **VIEWS)
# Table 9 of the paper, keyed by the modality bound to the image. Replication follows the table, not the main text
# (which says 50x for LLVIP too). `epochs`/`warmup_epochs` only set a run's length when it gives neither steps
# nor epochs.
TABLE9: dict[str, dict[str, Any]] = {
    "audio": dict(replication=1.25, temperature=0.05, lr=1.6e-3, weight_decay=0.2, batch_size=2048, grad_clip=1.0,
                  warmup_epochs=2, epochs=64, drop_path=0.1, freq_mask=12, **AUG_OFF),
    "depth": dict(replication=50.0, temperature=0.2, lr=1.6e-3, weight_decay=0.2, batch_size=512, grad_clip=1.0,
                  warmup_epochs=2, epochs=64, drop_path=0.0, freq_mask=0, **AUG_ON),
    "thermal": dict(replication=25.0, temperature=0.1, lr=5e-4, weight_decay=0.05, batch_size=512, grad_clip=5.0,
                    warmup_epochs=2, epochs=64, drop_path=0.0, freq_mask=0, **AUG_ON),
    "imu": dict(replication=1.0, temperature=0.2, lr=5e-4, weight_decay=0.5, batch_size=512, grad_clip=1.0,
                warmup_epochs=2, epochs=8, drop_path=0.7, freq_mask=0, **AUG_OFF),
}  # fmt: skip
# Image-text (CLIP-style) training has no row in Table 9: these are bindkit's defaults (OpenCLIP-like, learnable
# temperature starting at the text encoder's configured scale).
CLIP_DEFAULTS: dict[str, Any] = dict(
    replication=1.0, temperature="learnable", lr=5e-4, weight_decay=0.2, batch_size=512, grad_clip=1.0,
    warmup_epochs=2, epochs=32, drop_path=0.0, freq_mask=0, **AUG_OFF,
)  # fmt: skip
# Run-control fields may differ between a run and its resumption; everything else must match. A cache location is
# not part of a run's identity: the cache's own fingerprints say whether its contents fit the run.
RUN_CONTROL = ("resume", "stop_after", "progress", "num_workers", "device", "cache_dir")


T = TypeVar("T")


def required(value: T | None) -> T:
    """A `PairConfig` setting of a resolved config (`resolve` fills every None from Table 9)."""
    if value is None:
        raise ValueError("a pair setting is unset: resolve the config first (bindkit.train.config.resolve)")
    return value


def pair_defaults(anchor: str, other: str) -> dict[str, Any]:
    """Table 9's row for a pair (keyed by the non-anchor modality), or the CLIP-style defaults."""
    for m in (other, anchor):
        if m in TABLE9:
            return dict(TABLE9[m])
    return dict(CLIP_DEFAULTS)


@dataclass
class LoRAConfig:
    """Low-rank adapters on attention projections: W + (alpha / rank) * B @ A, B starting at zero."""

    rank: int = 8
    alpha: float = 16.0
    modules: tuple[str, ...] = ("in_proj", "out_proj")  # attention projections to adapt
    blocks: tuple[int, ...] | None = None  # trunk block indices to adapt (None: all)


@dataclass
class PairConfig:
    """One modality pair: `(anchor, other)` modalities, the data, and per-pair hyper-parameters (None: Table 9)."""

    modalities: tuple[str, str]
    data: Any = None  # a manifest path (JSONL / Parquet) or a PairDataset object
    name: str | None = None
    replication: float | None = None  # samples per epoch = len(data) * replication
    temperature: float | str | None = None  # fixed tau, or "learnable" (a trained text encoder's scale)
    batch_size: int | None = None  # global batch (all ranks, all accumulation steps)
    lr: float | None = None  # peak learning rate of the encoders this pair trains
    weight_decay: float | None = None
    grad_clip: float | None = None  # max global grad norm of this pair's trained parameters (0: off)
    drop_path: float | None = None  # stochastic depth rate of the trained encoders' trunks
    freq_mask: int | None = None  # SpecAugment frequency-mask width for audio inputs (0: off)
    augment: bool | None = None  # seeded views, geometry shared by both sides (Table 9: depth, thermal)
    views: int = 4  # augmented views cached per item when `augment` is on
    erase: float | None = None  # random-erasing probability on the trained depth/thermal side (Table 9: 0.25)
    crop_scale: tuple[float, float] | None = None  # random-resized-crop area range, fraction of the image
    jitter: float | None = None  # colour jitter: brightness and contrast/saturation factors in [1 - j, 1 + j]
    randaug: int | None = None  # RandAugment ops per image (timm's n: 2; 0: off)
    randaug_magnitude: float | None = None  # RandAugment magnitude of 10 (timm's m: 9)
    randaug_std: float | None = None  # noise std on each op's magnitude, clipped to [0, 10] (mstd: 0.5)
    warmup_epochs: float | None = None
    epochs: float | None = None
    load_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # modality -> extra loader kwargs


@dataclass
class TrainConfig:
    """A training run. `train(config)` resolves defaults, writes `run_dir/config.json` and trains."""

    pairs: list[PairConfig] = field(default_factory=list)
    model: str = "imagebind_tiny"  # registry name, bindkit model folder or official .pth
    init: str | None = None  # weights (bindkit folder / .pth) copied into the encoders they cover
    carry: tuple[str, ...] = ()  # extra encoders kept (frozen) in the trained model, e.g. ("text",)
    encoders: dict[str, str] = field(default_factory=dict)  # modality -> train | frozen | lora
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    run_dir: str = "runs/train"
    steps: int | None = None  # total optimizer steps; else `epochs` (else the pairs' Table 9 epochs)
    epochs: float | None = None
    warmup_steps: int | None = None  # else `warmup_epochs` (else Table 9: 2 epochs)
    warmup_epochs: float | None = None
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of the peak
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-6
    seed: int = 0
    precision: str = "fp32"  # fp32 | bf16 (autocast for encoder forwards; loss and optimizer in fp32)
    grad_accum: int = 1  # micro-batches per step, with exact full-batch gradients
    grad_checkpointing: bool = False  # activation checkpointing on the trained trunks
    cache: bool = True  # frozen anchor embeddings computed once and cached on disk
    fit_normalization: int = 2048  # items to fit a bound depth/thermal/IMU loader's mean/std from (0: off)
    cache_dir: str | None = None  # default ~/.cache/bindkit/anchors
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_workers: int = 2  # loader threads for file datasets
    progress: bool = True
    resume: bool = False
    stop_after: int | None = None  # stop (with a checkpoint) after this many steps in this session

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a JSON-style dict; unknown keys are an error naming them."""
        _check_keys(cls, d, "train config")
        d = dict(d)
        pairs = []
        for i, p in enumerate(d.pop("pairs", [])):
            _check_keys(PairConfig, p, f"pairs[{i}]")
            pairs.append(PairConfig(**{**p, "modalities": tuple(p["modalities"])}))
        lora = d.pop("lora", {})
        if isinstance(lora, dict):
            _check_keys(LoRAConfig, lora, "lora")
            fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in lora.items()}
            lora = LoRAConfig(**fields)
        for k in ("betas", "carry"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(pairs=pairs, lora=lora, **d)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a JSON config file. Relative `pairs[].data`, `model` and `init` paths that exist next to the file
        resolve against its folder (like paths inside a manifest)."""
        path = Path(path)
        cfg = cls.from_dict(json.loads(path.read_text()))

        def near(v: Any) -> Any:
            if isinstance(v, str) and not Path(v).is_absolute() and (path.parent / v).exists():
                return str(path.parent / v)
            return v

        pairs = [dataclasses.replace(p, data=near(p.data)) for p in cfg.pairs]
        return dataclasses.replace(cfg, pairs=pairs, model=near(cfg.model), init=near(cfg.init))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; in-memory datasets are described by their `describe()` string."""
        d = dataclasses.asdict(dataclasses.replace(self, pairs=[]))
        d["pairs"] = [{**dataclasses.asdict(dataclasses.replace(p, data=None)), "data": _describe(p.data)}
                      for p in self.pairs]  # fmt: skip
        return json.loads(json.dumps(d))  # tuples -> lists


def _describe(data: Any) -> Any:
    if data is None or isinstance(data, (str, Path)):
        return None if data is None else str(data)
    return data.describe() if hasattr(data, "describe") else f"<{type(data).__name__}>"


def _check_keys(cls: type, d: dict[str, Any], where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(d) - names
    if extra:
        raise ValueError(f"{where}: unknown keys {sorted(extra)}; known: {sorted(names)}")


def resolve(cfg: TrainConfig) -> TrainConfig:
    """A copy with every per-pair `None` filled from Table 9 and encoder modes defaulted; checks values."""
    if not cfg.pairs:
        raise ValueError("the train config has no pairs")
    pairs = [_resolve_pair(i, p) for i, p in enumerate(cfg.pairs)]
    names = [p.name for p in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"pair names must be unique, got {names}; set `name` on repeated pairs")
    modes = {canonical(m): v for m, v in cfg.encoders.items()}
    for p in pairs:
        for m in p.modalities:
            modes.setdefault(m, "frozen" if m in ("vision", "text") else "train")
    bad = {m: v for m, v in modes.items() if v not in MODES}
    if bad:
        raise ValueError(f"encoder modes must be one of {MODES}, got {bad}")
    for p in pairs:
        if all(modes[m] == "frozen" for m in p.modalities):
            raise ValueError(f"pair {p.name}: both encoders are frozen, nothing to train")
    _check_run(cfg)
    return dataclasses.replace(cfg, pairs=pairs, encoders=modes, carry=tuple(canonical(m) for m in cfg.carry))


def _resolve_pair(i: int, p: PairConfig) -> PairConfig:
    if len(p.modalities) != 2:
        raise ValueError(f"pairs[{i}]: modalities must be two names, got {p.modalities}")
    a, b = (canonical(m) for m in p.modalities)
    if a == b:
        raise ValueError(f"pairs[{i}]: a pair needs two different modalities, got {p.modalities}")
    if p.data is None:
        raise ValueError(f"pairs[{i}] ({a}, {b}): no data given")
    d = pair_defaults(a, b)
    filled = {k: d[k] if getattr(p, k) is None else getattr(p, k) for k in d}
    filled["crop_scale"] = tuple(float(v) for v in filled["crop_scale"])  # a JSON list -> a tuple
    q = dataclasses.replace(p, modalities=(a, b), name=p.name or f"{a}-{b}", **filled)
    t = q.temperature
    if not (t == "learnable" or (isinstance(t, (int, float)) and t > 0)):
        raise ValueError(f"pair {q.name}: temperature must be a positive number or 'learnable', got {t!r}")
    for k in ("replication", "lr", "batch_size"):
        if not getattr(q, k) > 0:
            raise ValueError(f"pair {q.name}: {k} must be positive, got {getattr(q, k)}")
    if q.views < 1 or not 0 <= filled["drop_path"] < 1 or filled["grad_clip"] < 0:
        raise ValueError(f"pair {q.name}: need views >= 1, 0 <= drop_path < 1, grad_clip >= 0")
    lo, hi = filled["crop_scale"]
    ok = 0 < lo <= hi <= 1 and 0 <= filled["jitter"] < 1 and 0 <= filled["erase"] <= 1
    if not ok or filled["randaug"] < 0 or filled["randaug_std"] < 0:
        raise ValueError(f"pair {q.name}: need 0 < crop_scale[0] <= crop_scale[1] <= 1, 0 <= jitter < 1, "
                         "0 <= erase <= 1, randaug >= 0, randaug_std >= 0")  # fmt: skip
    return q


def _check_run(cfg: TrainConfig) -> None:
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    if cfg.grad_accum < 1 or cfg.checkpoint_every < 1 or cfg.log_every < 1:
        raise ValueError("grad_accum, checkpoint_every and log_every must be >= 1")
    if cfg.steps is not None and cfg.steps < 1:
        raise ValueError(f"steps must be >= 1, got {cfg.steps}")
    if cfg.lora.rank < 1 or not set(cfg.lora.modules) <= {"in_proj", "out_proj"}:
        raise ValueError(f"lora: rank must be >= 1 and modules a subset of in_proj/out_proj, got {cfg.lora}")


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """A JSON config file with top-level fields replaced (for CLI flags: resume, steps, run_dir, device, ...);
    overrides that are None are ignored."""
    cfg = TrainConfig.load(path)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"unknown train config fields {sorted(unknown)}")
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def comparable(d: dict[str, Any]) -> dict[str, Any]:
    """A resolved config dict without the run-control fields (what must match on resume)."""
    return {k: v for k, v in d.items() if k not in RUN_CONTROL}
