"""Setting up the model for a run: architecture and weights, per-encoder modes, pair settings written into it."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import torch

from bindkit.checkpoint import CONFIG
from bindkit.model import ImageBind
from bindkit.registry import get_config, list_configs
from bindkit.resolve import load
from bindkit.train.config import PairConfig, TrainConfig, required
from bindkit.train.lora import apply_lora
from bindkit.train.optim import init_encoder, set_drop_path


def used_modalities(cfg: TrainConfig) -> list[str]:
    """Modalities named by the run's pairs, in first-seen order."""
    out: list[str] = []
    for p in cfg.pairs:
        out += [m for m in p.modalities if m not in out]
    return out


def folder_modalities(source: str | None) -> list[str]:
    """Modalities of a bindkit model folder (read from its config.json), [] for anything else."""
    path = Path(source) if source else None
    if path is None or not (path / CONFIG).is_file():
        return []
    return list(json.loads((path / CONFIG).read_text())["encoders"])


ARCH = ("modality", "width", "depth", "heads", "out_dim", "mlp_ratio", "bias_kv", "pre_ln", "input_shape", "kernel",
        "stride", "vocab_size", "causal", "pool", "grid_rule", "cls_token")  # fmt: skip


def build_model(cfg: TrainConfig) -> ImageBind:
    """The run's model. `cfg.model` gives the architecture and weights: a registry name (official random init;
    modalities: the pairs', `init`'s and `carry`), a bindkit folder (all its modalities) or an official .pth (the
    pairs' and `carry`). Then every encoder `init` holds replaces the run's (architectures must match), so binding to
    a trained anchor keeps its text encoder for zero-shot use."""
    mods = list(dict.fromkeys(used_modalities(cfg) + list(cfg.carry)))
    torch.manual_seed(cfg.seed)
    if cfg.model in list_configs():  # training from scratch: the official init, not bindkit.load's random weights
        arch = get_config(cfg.model)
        model = ImageBind(
            arch.select([m for m in arch.modalities if m in mods + folder_modalities(cfg.init)])
        )
        for enc in model.encoders.values():
            init_encoder(enc)
    else:
        model = load(cfg.model, None if Path(cfg.model).is_dir() else mods)
    if cfg.init:
        have = folder_modalities(cfg.init) or mods
        common = [m for m in model.encoders if m in have]
        if not common:
            raise ValueError(f"init {cfg.init} holds none of the model's modalities {list(model.encoders)}")
        src = load(cfg.init, common)
        for m in common:
            a, b = src.config.encoders[m], model.config.encoders[m]
            diff = [f for f in ARCH if getattr(a, f) != getattr(b, f)]
            if diff:
                raise ValueError(f"init {cfg.init}: the {m} encoder differs from the run's model in {diff}")
            model.encoders[m] = src.encoders[m]  # its config (scale, preprocess constants) comes along
            model.config = dataclasses.replace(model.config, encoders={**model.config.encoders, m: a})
    return model


def set_encoder_config(model: ImageBind, modality: str, **changes) -> None:
    """Change an encoder's config fields on both the model and the encoder (so saved models carry them)."""
    model.config = model.config.replace_encoder(modality, **changes)
    model.encoders[modality].cfg = model.config.encoders[modality]


def configure(model: ImageBind, cfg: TrainConfig) -> dict[str, str]:
    """Apply encoder modes (freeze / train / LoRA), drop-path rates and fixed temperatures; returns the modes."""
    modes = {m: cfg.encoders.get(m, "frozen") for m in model.encoders}  # encoders no pair uses stay frozen
    for p in cfg.pairs:
        for m in p.modalities:
            if modes[m] != "frozen" and p.drop_path != model.encoders[m].cfg.drop_path:
                set_drop_path(model.encoders[m], required(p.drop_path))
                set_encoder_config(model, m, drop_path=p.drop_path)
        _set_temperature(model, p, modes)
    for m, mode in modes.items():
        model.encoders[m].requires_grad_(mode == "train")
        model.encoders[m].train(mode != "frozen")
        model.encoders[m].trunk.grad_checkpointing = cfg.grad_checkpointing and mode != "frozen"
    lora = [m for m, mode in modes.items() if mode == "lora"]
    if lora:
        apply_lora(model, lora, cfg.lora.rank, cfg.lora.alpha, cfg.lora.modules, cfg.lora.blocks)
    return modes


def _set_temperature(model: ImageBind, p: PairConfig, modes: dict[str, str]) -> None:
    """A fixed tau becomes the logit scale (1/tau) of the pair's non-anchor encoder, so inference matches training;
    'learnable' needs a trained encoder with a learnable scale in the pair."""
    a, b = p.modalities
    if p.temperature == "learnable":
        if not any(model.encoders[m].cfg.learnable_scale and modes[m] == "train" for m in (a, b)):
            raise ValueError(f"pair {p.name}: temperature 'learnable' needs a trained encoder with a learnable "
                             f"logit scale (text); got {a}={modes[a]}, {b}={modes[b]}")  # fmt: skip
        return
    enc = model.encoders[b]
    if modes[b] == "frozen" or enc.cfg.scale is None or enc.cfg.learnable_scale:
        return
    t = p.temperature
    assert isinstance(t, (int, float)), t  # resolve() leaves a number or "learnable"
    scale = 1.0 / float(t)
    if not math.isclose(scale, enc.cfg.scale, rel_tol=1e-6):
        with torch.no_grad():
            enc.post.log_scale.fill_(math.log(scale))
        set_encoder_config(model, b, scale=scale)


def learnable_scale_owner(model: ImageBind, p: PairConfig, modes: dict[str, str]) -> str:
    """The modality whose learnable logit scale a 'learnable' pair uses."""
    return next(m for m in p.modalities if model.encoders[m].cfg.learnable_scale and modes[m] == "train")


def describe_model(model: ImageBind, modes: dict[str, str]) -> dict[str, dict]:
    """Per encoder: mode, parameter count and trainable count (for the run's log)."""
    out = {}
    for m, enc in model.encoders.items():
        n = sum(p.numel() for p in enc.parameters())
        t = sum(p.numel() for p in enc.parameters() if p.requires_grad)
        out[m] = {"mode": modes[m], "params": n, "trainable": t, "drop_path": enc.cfg.drop_path,
                  "logit_scale": enc.scale}  # fmt: skip
    return out


def pretrained(cfg: TrainConfig, modality: str) -> bool:
    """Whether the run starts `modality`'s encoder from saved weights (a model folder, a .pth, or `init`)."""
    if cfg.model not in list_configs():
        return True
    if not cfg.init:
        return False
    return modality in folder_modalities(cfg.init) or Path(cfg.init).is_file()


def fit_normalization(
    model: ImageBind, cfg: TrainConfig, datasets: list, modes: dict[str, str]
) -> dict[str, dict]:
    """Fit and store the loader normalisation (mean, std) of each depth/thermal/IMU encoder trained from scratch whose
    config has none, from up to `cfg.fit_normalization` items of its first file-backed pair; returns what was fitted.

    The constants go into the encoder's `preprocess`, so the saved model normalises its own inputs at inference.
    Pretrained encoders keep the inputs they were trained on (the official checkpoint's are not published: put the
    community constants in its config if wanted). In-memory tensor pairs are model inputs already (their
    normalisation is the caller's), so they are left alone.
    """
    import numpy as np

    from bindkit.data import normalization_fitters
    from bindkit.train.data import FilePairs

    fitted: dict[str, dict] = {}
    fitters = normalization_fitters()
    for p, ds in zip(cfg.pairs, datasets, strict=True):
        for s, m in enumerate(p.modalities):
            enc = model.config.encoders[m]
            if m not in fitters or modes[m] == "frozen" or m in fitted or "mean" in enc.preprocess or \
                    not isinstance(ds, FilePairs) or not cfg.fit_normalization or pretrained(cfg, m):  # fmt: skip
                continue
            n = min(len(ds), cfg.fit_normalization)
            idx = np.unique(np.linspace(0, len(ds) - 1, n).round().astype(np.int64))  # spread over the data
            chunks = (ds.load(s, c, np.zeros_like(c), enc) for c in np.array_split(idx, -(-len(idx) // 64)))
            fitted[m] = fitters[m](chunks)
            set_encoder_config(model, m, preprocess={**enc.preprocess, **fitted[m]})
    return fitted
