"""Shared pieces of the training tests: a very small model and a fabricated, learnable (image, depth) world."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bindkit import ImageBind, ImageBindConfig, get_config
from bindkit.train import PairConfig, TensorPairs, TrainConfig


def small_config(modalities=("vision", "depth"), size: int = 32) -> ImageBindConfig:
    """imagebind_tiny's encoders cut to width 64, 2 blocks, 32-d output and 32-pixel inputs."""
    cfg = get_config("imagebind_tiny").select(list(modalities))
    enc = {}
    for m, e in cfg.encoders.items():
        shape = (e.input_shape[0], size, size) if m in ("vision", "depth", "thermal") else e.input_shape
        shape = (16,) if m == "text" else shape
        enc[m] = dataclasses.replace(e, width=64, depth=2, heads=4, out_dim=32, input_shape=shape)
    return ImageBindConfig("train-test", enc)


def small_model(modalities=("vision", "depth"), seed: int = 0) -> ImageBind:
    """A seeded `small_config` model."""
    torch.manual_seed(seed)
    return ImageBind(small_config(modalities))


def world(n: int = 128, seed: int = 0, size: int = 32) -> TensorPairs:
    """Images = class prototype + instance noise; depth = a noisy linear function of the image (instance-paired)."""
    g = torch.Generator().manual_seed(seed)
    cls = torch.randint(0, 10, (n,), generator=g)
    protos = torch.randn(10, 3, size, size, generator=g)
    img = protos[cls] + 0.8 * torch.randn(n, 3, size, size, generator=g)
    depth = 2 * img.mean(1, keepdim=True) + 0.3 * torch.randn(n, 1, size, size, generator=g)
    return TensorPairs(("vision", "depth"), img, depth, labels=cls.tolist())


def clip_world(n: int = 16) -> TensorPairs:
    """Random images paired with random 5-token captions (SOT ... EOT) of a 16-token text config."""
    g = torch.Generator().manual_seed(3)
    ids = torch.zeros(n, 16, dtype=torch.long)
    ids[:, 0], ids[:, 1:6] = 49406, torch.randint(1, 4000, (n, 5), generator=g)
    ids[:, 6] = 49407
    return TensorPairs(("vision", "text"), torch.randn(n, 3, 32, 32, generator=g), ids)


def config(tmp_path, run: str = "run", data=None, pair: dict | None = None, **kw) -> TrainConfig:
    """A short single-pair (vision, depth) run in `tmp_path`, quiet, with its own anchor cache."""
    p = {"batch_size": 16, "lr": 1e-3, "replication": 1.0, **(pair or {})}
    kw = {"steps": 6, "warmup_steps": 1, "checkpoint_every": 100, "progress": False, **kw}
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return TrainConfig(pairs=[PairConfig(("vision", "depth"), data or world(64), **p)], run_dir=str(tmp_path / run),
                       **kw)  # fmt: skip


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter gradient that is set."""
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def image_depth_files(root: Path, n: int, size: int = 40) -> Path:
    """n random PNG images with depth maps (metres, .npy) that follow their brightness, and `root/pairs.jsonl`
    listing them (labels alternate 0/1); returns the manifest."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i}.png")
        np.save(root / f"{i}.npy", (1.0 + img.mean(2) / 255).astype(np.float32))  # depth in metres
        rows.append({"image": f"{i}.png", "depth": f"{i}.npy", "label": i % 2})
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "pairs.jsonl"
