"""The demo's three training runs, all through `bindkit.train`: the image-text anchor (CLIP-style, both towers
open), the binding run ((image, X) pairs against the frozen image encoder, the paper's method) and the text-paired
comparison run ((text, X) pairs against the frozen text encoder).

Depth stems are kept blind to planes: the disparity of a flat plate is affine in pixel coordinates, and in the
digits world the plate's pose (tilt up to 30 degrees, 0.55-1.05 m) moves disparity ten times more than the digit's
relief does. Each depth patch filter is projected off {1, x, y} at the start and after every optimizer step, so
tokens see the relief only. Measured: without it the depth encoder stays at chance within the demo's budget.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bindkit.train import PairConfig, RunResult, TensorPairs, Trainer, TrainConfig

from .settings import BOUND, DEMO_CONFIG, Phase, register_demo_config

DEFAULT_TAU = 0.1


@torch.no_grad()
def plane_blind_(weight: torch.Tensor) -> torch.Tensor:
    """Project each 2-D patch filter of a conv weight (D, C, k, k) off the constant and the two linear ramps."""
    k = weight.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(k, dtype=torch.float64), torch.arange(k, dtype=torch.float64),
                            indexing="ij")  # fmt: skip
    basis, _ = torch.linalg.qr(torch.stack([torch.ones(k * k, dtype=torch.float64), xx.flatten(), yy.flatten()], 1))
    flat = weight.reshape(*weight.shape[:2], k * k).double()  # (D, C, k*k)
    flat -= (flat @ basis) @ basis.T
    weight.copy_(flat.reshape(weight.shape).to(weight.dtype))
    return weight


def _run(pairs: list[PairConfig], phase: Phase, run_dir: Path, seed: int, progress: bool, **extra) -> RunResult:
    """One `bindkit.train` run on CPU with the demo's model config; checkpoints only at the end."""
    register_demo_config()
    cfg = TrainConfig(pairs=pairs, model=DEMO_CONFIG, run_dir=str(run_dir), steps=phase.steps,
                      warmup_steps=phase.warmup_steps, seed=seed, device="cpu", checkpoint_every=phase.steps,
                      keep_checkpoints=1, progress=progress, cache_dir=str(run_dir.parent / "cache"), **extra)  # fmt: skip
    trainer = Trainer(cfg)
    if any("depth" in p.modalities for p in pairs) and trainer.modes.get("depth") == "train":
        weight = trainer.model.encoders["depth"].stem.proj.weight
        plane_blind_(weight)
        trainer.optimizer.register_step_post_hook(lambda *_: plane_blind_(weight))
    return trainer.run()


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
    pairs = [_pair(via, m, inputs[via], inputs[m], phase, phase.temperature.get(m, DEFAULT_TAU)) for m in BOUND]
    return _run(pairs, phase, run_dir, seed, progress, init=str(anchor),
                encoders={"vision": "frozen", "text": "frozen"})  # fmt: skip
