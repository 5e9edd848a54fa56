"""The demo's three training runs, all through `bindkit.train`: the image-text anchor (CLIP-style, both towers
open), the binding run ((image, X) pairs against the frozen image encoder, the paper's method) and the text-paired
comparison run ((text, X) pairs against the frozen text encoder).

Patch stems are kept blind to what carries no class information, by projecting their filters at the start and
after every optimizer step (`STEMS`): image and thermal filters lose their mean (a patch's background colour or
temperature), depth filters their mean and linear ramps (the disparity of a flat plate is affine in pixel
coordinates, and the plate's pose moves disparity about ten times more than the digit's relief does). Measured in
the demo's budget: the depth encoder stays at chance without it; the anchor's image zero-shot after 600 steps goes
from 10% to 78%; thermal binding from 60% to 76%. Tokens still see colour and temperature contrasts.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import torch

from bindkit.train import PairConfig, RunResult, TensorPairs, TrainConfig, Trainer

from .settings import BOUND, DEMO_CONFIG, Phase, register_demo_config

DEFAULT_TAU = 0.1


@torch.no_grad()
def plane_blind_(weight: torch.Tensor) -> torch.Tensor:
    """Project each 2-D patch filter of a conv weight (D, C, k, k) off the constant and the two linear ramps."""
    k = weight.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(k, dtype=torch.float64), torch.arange(k, dtype=torch.float64),
                            indexing="ij")  # fmt: skip
    basis, _ = torch.linalg.qr(
        torch.stack([torch.ones(k * k, dtype=torch.float64), xx.flatten(), yy.flatten()], 1)
    )
    flat = weight.reshape(*weight.shape[:2], k * k).double()  # (D, C, k*k)
    flat -= (flat @ basis) @ basis.T
    weight.copy_(flat.reshape(weight.shape).to(weight.dtype))
    return weight


@torch.no_grad()
def mean_free_(weight: torch.Tensor) -> torch.Tensor:
    """Subtract from each filter of a conv weight (D, C, ...) its mean over the kernel, per input channel."""
    weight -= weight.mean(dim=tuple(range(2, weight.ndim)), keepdim=True)
    return weight


STEMS = {"vision": mean_free_, "thermal": mean_free_, "depth": plane_blind_}


def constrain_stems(trainer: Trainer) -> list[str]:
    """Apply `STEMS` to the stems this run trains, now and after every optimizer step; returns those modalities."""
    todo = [(m, fn, trainer.model.get_parameter(f"encoders.{m}.stem.proj.weight")) for m, fn in STEMS.items()
            if trainer.modes.get(m) == "train"]  # fmt: skip
    for _, fn, w in todo:
        fn(w)

    def constrain(*_: Any) -> None:  # an optimizer step post-hook
        for _m, fn, w in todo:
            fn(w)

    if todo:
        trainer.optimizer.register_step_post_hook(constrain)
    return [m for m, _, _ in todo]


def _run(pairs: list[PairConfig], phase: Phase, run_dir: Path, seed: int, progress: bool,
         stop: threading.Event | None = None, **extra) -> RunResult:  # fmt: skip
    """One `bindkit.train` run on CPU with the demo's model config; checkpoints only at the end."""
    register_demo_config()
    cfg = TrainConfig(pairs=pairs, model=DEMO_CONFIG, run_dir=str(run_dir), steps=phase.steps,
                      warmup_steps=phase.warmup_steps, seed=seed, device="cpu", checkpoint_every=phase.steps,
                      keep_checkpoints=1, progress=progress, cache_dir=str(run_dir.parent / "cache"), **extra)  # fmt: skip
    trainer = Trainer(cfg)
    constrain_stems(trainer)
    return trainer.run(stop)


def _pair(anchor: str, other: str, a: torch.Tensor, b: torch.Tensor, phase: Phase, tau, n: int | None = None,
          ) -> PairConfig:  # fmt: skip
    """An in-memory pair of the first `n` instances (default len(b)); rows of `a` beyond them are left out (the
    anchor set is the larger one). When `b` holds k * n rows (k views of the n instances, view-major, e.g. an
    audio clip as recorded then augmented), the anchor rows repeat k times and the replication is divided by k, so
    the modality keeps its share of the steps. No image augmentation (the presets were tuned without it; Table 9
    turns it on for depth and thermal by default)."""
    n = len(b) if n is None else n
    if len(b) % n:
        raise ValueError(f"{other}: {len(b)} rows are not whole views of {n} instances")
    rows = torch.arange(len(b)) % n  # view-major: row v * n + i is view v of instance i
    return PairConfig((anchor, other), TensorPairs((anchor, other), a[rows], b), batch_size=phase.batch_size,
                      lr=phase.lr, weight_decay=phase.weight_decay, temperature=tau,
                      replication=phase.share.get(other, 1.0) * n / len(b), drop_path=0.0, freq_mask=0,
                      grad_clip=1.0, augment=False, erase=0.0, randaug=0)  # fmt: skip


def train_anchor(inputs: dict[str, torch.Tensor], phase: Phase, run_dir: Path, seed: int = 0,
                 progress: bool = True, stop: threading.Event | None = None) -> RunResult:  # fmt: skip
    """CLIP-style image-text training from scratch, both towers open, learnable temperature."""
    pair = _pair("vision", "text", inputs["vision"], inputs["text"], phase, "learnable")
    return _run([pair], phase, run_dir, seed, progress, stop, encoders={"vision": "train", "text": "train"})


def train_bound(inputs: dict[str, torch.Tensor], anchor: Path, phase: Phase, run_dir: Path, seed: int = 0,
                progress: bool = True, via: str = "vision", stop: threading.Event | None = None) -> RunResult:  # fmt: skip
    """Train audio, depth, thermal and IMU against the frozen `via` encoder (vision: the paper's emergent binding;
    text: the text-paired comparison) of the anchor model in folder `anchor`; one pair per step. The binding
    instances are the first n rows (n: the fewest rows of a bound modality); a modality with k * n rows holds k
    views of each."""
    n = min(len(inputs[m]) for m in BOUND)
    pairs = [
        _pair(via, m, inputs[via], inputs[m], phase, phase.temperature.get(m, DEFAULT_TAU), n) for m in BOUND
    ]
    return _run(pairs, phase, run_dir, seed, progress, stop, init=str(anchor),
                encoders={"vision": "frozen", "text": "frozen"})  # fmt: skip
