"""The demo's three training runs, all through `bindkit.train`: the image-text anchor (CLIP-style, both towers
open), the binding run ((image, X) pairs against the frozen image encoder, the paper's method) and the text-paired
comparison run ((text, X) pairs against the frozen text encoder)."""

from __future__ import annotations

from pathlib import Path

import torch

from bindkit.train import PairConfig, RunResult, TensorPairs, TrainConfig, train

from .settings import BOUND, DEMO_CONFIG, Phase, register_demo_config

DEFAULT_TAU = 0.1


def _run(
    pairs: list[PairConfig], phase: Phase, run_dir: Path, seed: int, progress: bool, **extra
) -> RunResult:
    """One `bindkit.train` run on CPU with the demo's model config; checkpoints only at the end."""
    register_demo_config()
    cfg = TrainConfig(pairs=pairs, model=DEMO_CONFIG, run_dir=str(run_dir), steps=phase.steps,
                      warmup_steps=phase.warmup_steps, seed=seed, device="cpu", checkpoint_every=phase.steps,
                      keep_checkpoints=1, progress=progress, cache_dir=str(run_dir.parent / "cache"), **extra)  # fmt: skip
    return train(cfg)


def _pair(anchor: str, other: str, a: torch.Tensor, b: torch.Tensor, phase: Phase, tau) -> PairConfig:
    return PairConfig((anchor, other), TensorPairs((anchor, other), a, b), batch_size=phase.batch_size,
                      lr=phase.lr, weight_decay=phase.weight_decay, temperature=tau, replication=1.0,
                      drop_path=0.0, freq_mask=0, grad_clip=1.0)  # fmt: skip


def train_anchor(inputs: dict[str, torch.Tensor], phase: Phase, run_dir: Path, seed: int = 0,
                 progress: bool = True) -> RunResult:  # fmt: skip
    """CLIP-style image-text training from scratch, both towers open, learnable temperature."""
    pair = _pair("vision", "text", inputs["vision"], inputs["text"], phase, "learnable")
    return _run([pair], phase, run_dir, seed, progress, encoders={"vision": "train", "text": "train"})


def train_bound(inputs: dict[str, torch.Tensor], anchor: Path, phase: Phase, run_dir: Path, seed: int = 0,
                progress: bool = True, via: str = "vision") -> RunResult:  # fmt: skip
    """Train audio, depth, thermal and IMU against the frozen `via` encoder (vision: the paper's emergent binding;
    text: the text-paired comparison) of the anchor model in folder `anchor`; one pair per step."""
    pairs = [
        _pair(via, m, inputs[via], inputs[m], phase, phase.temperature.get(m, DEFAULT_TAU)) for m in BOUND
    ]
    return _run(pairs, phase, run_dir, seed, progress, init=str(anchor),
                encoders={"vision": "frozen", "text": "frozen"})  # fmt: skip
