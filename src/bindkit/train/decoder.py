"""Train an unCLIP decoder (`bindkit.apps.decoder.Decoder`) on images and their frozen image embeddings.

The standard denoising objective (the MSE of the decoder's target at a uniform timestep, diffusers' DDPM noise
schedule) plus `stroke_weight` times the MSE of the implied clean image's high-pass part (`strokes`), the condition
dropped to zeros for a share of the batch (for classifier-free guidance) and noised before that (unCLIP's noise
augmentation, which here also covers the gap between image embeddings and the other modalities'). The run directory
has the trainer's layout and the same resume rule (`resume=True` continues exactly from the last checkpoint):

    config.json                 both configs; a resumed run must match
    metrics.jsonl, plots/loss.png
    checkpoints/step_<n>/       decoder/ (Decoder.save), optimizer.safetensors, trainer.json, rng.safetensors
    checkpoints/latest
    final/decoder/              the trained decoder (also returned)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from bindkit.apps.decoder import Decoder, DecoderConfig
from bindkit.train.ckpt import (
    latest_checkpoint,
    load_optimizer,
    optimizer_tensors,
    publish_checkpoint,
    truncate_metrics,
)
from bindkit.train.optim import lr_factor
from bindkit.train.plots import plot_metrics


@dataclass(frozen=True)
class DecoderTrainConfig:
    """Schedule and regularisation of a decoder run."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    cond_drop: float = 0.1  # share of rows trained unconditionally (zero embedding)
    cond_noise: float = 0.5  # max norm of Gaussian noise added to a unit condition (renormalised after)
    # extra weight of the error's high-pass part (`strokes`), what the anchor reads: at the demo's 600 steps, weights
    # 4 / 8 / 16 / 32 / 64 drew held-out images as the right digit 37 / 49 / 51 / 59 / 58% (docs/applications.md)
    stroke_weight: float = 32.0
    precision: str = "bf16"  # autocast dtype on the CPU: bf16 or fp32
    checkpoint_every: int = 500
    log_every: int = 10
    seed: int = 0


def _check(images: torch.Tensor, emb: torch.Tensor, dcfg: DecoderConfig, cfg: DecoderTrainConfig) -> None:
    s = dcfg.image_size
    if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
        raise ValueError(f"images must be (N, 3, {s}, {s}) in [-1, 1], got {tuple(images.shape)}")
    if emb.shape != (len(images), dcfg.embed_dim):
        raise ValueError(f"embeddings must be ({len(images)}, {dcfg.embed_dim}), got {tuple(emb.shape)}")
    if cfg.steps <= 0 or cfg.batch_size <= 0 or cfg.batch_size > len(images):
        raise ValueError(f"need steps > 0 and 0 < batch_size <= {len(images)} images, got {cfg.steps}, "
                         f"{cfg.batch_size}")  # fmt: skip
    if cfg.precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be bf16 or fp32, got {cfg.precision!r}")


def noisy_condition(emb: torch.Tensor, cfg: DecoderTrainConfig, g: torch.Generator) -> torch.Tensor:
    """(B, D) unit embeddings -> noised (norm up to `cond_noise`, renormalised), a `cond_drop` share zeroed."""
    b = len(emb)
    level = torch.rand(b, 1, generator=g) * cfg.cond_noise
    noise = F.normalize(torch.randn(emb.shape, generator=g), dim=-1) * level
    keep = (torch.rand(b, 1, generator=g) >= cfg.cond_drop).float()
    return F.normalize(emb + noise, dim=-1) * keep


def strokes(x: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, S, S) less their local 5x5 mean: the pen strokes, without the surface and lighting that dominate
    a plain pixel MSE (and that the anchor's mean-free stems ignore)."""
    return x - F.avg_pool2d(x, 5, stride=1, padding=2, count_include_pad=False)


def batch_rows(n: int, batch: int, seed: int, step: int) -> np.ndarray:
    """Rows of optimizer step `step`: consecutive slices of a per-epoch permutation (drop-last)."""
    per_epoch = n // batch
    epoch, pos = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[pos * batch : (pos + 1) * batch]


class DecoderRun:
    """Set-up, loop and checkpoints of one decoder run (see the module docstring)."""

    def __init__(self, images: torch.Tensor, emb: torch.Tensor, dcfg: DecoderConfig, cfg: DecoderTrainConfig,
                 run_dir: str | Path, resume: bool = False):  # fmt: skip
        _check(images, emb, dcfg, cfg)
        self.images, self.emb, self.dcfg, self.cfg = images, F.normalize(emb.float(), dim=-1), dcfg, cfg
        self.run_dir = Path(run_dir)
        torch.manual_seed(cfg.seed)
        self.decoder = Decoder(dcfg).train()
        self.sched = self.decoder.noise_scheduler()
        self.opt = torch.optim.AdamW(self.decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.g = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self._prepare(resume)

    def _prepare(self, resume: bool) -> None:
        """Write config.json; refuse to overwrite a run, or to resume one with another config."""
        path, ck = self.run_dir / "config.json", self.run_dir / "checkpoints"
        both = {"decoder": dataclasses.asdict(self.dcfg), "train": dataclasses.asdict(self.cfg)}
        both = json.loads(json.dumps(both))  # tuples as lists, as read back
        if resume and path.is_file():
            if json.loads(path.read_text()) != both:
                raise ValueError(f"{path}: cannot resume with a different decoder or training config")
            last = latest_checkpoint(self.run_dir)
            if last is not None:
                self._load(last)
        elif ck.is_dir() and any(ck.iterdir()):
            raise FileExistsError(f"{self.run_dir} already holds a decoder run; pass resume=True or another folder")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(both, indent=1) + "\n")

    def train_step(self) -> float:
        """One optimizer step; returns the loss."""
        rows = torch.from_numpy(batch_rows(len(self.images), self.cfg.batch_size, self.cfg.seed, self.step))
        x0, c = self.images[rows], noisy_condition(self.emb[rows], self.cfg, self.g)
        noise = torch.randn(x0.shape, generator=self.g)
        t = torch.randint(0, self.dcfg.train_timesteps, (len(x0),), generator=self.g)
        xt = self.sched.add_noise(x0, noise, t)
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr * lr_factor(self.step, self.cfg.steps, self.cfg.warmup_steps)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            pred = self.decoder(xt, t, c)
        loss = F.mse_loss(pred.float(), self._target(x0, noise, t))
        if self.cfg.stroke_weight:
            loss = loss + self.cfg.stroke_weight * F.mse_loss(strokes(self._clean(pred.float(), xt, t)), strokes(x0))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.decoder.parameters(), 1.0)
        self.opt.step()
        self.step += 1
        return loss.item()

    def _clean(self, pred: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean image (B, 3, S, S) implied by the UNet's prediction at x_t."""
        kind = self.dcfg.prediction_type
        if kind == "sample":
            return pred
        a = self.sched.alphas_cumprod[t].view(-1, 1, 1, 1)
        if kind == "epsilon":
            return (xt - (1 - a).sqrt() * pred) / a.sqrt()
        return a.sqrt() * xt - (1 - a).sqrt() * pred

    def _target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the UNet predicts: the noise (epsilon), the clean image (sample) or the velocity (v_prediction)."""
        kind = self.dcfg.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "sample":
            return x0
        return self.sched.get_velocity(x0, noise, t)

    def run(self, progress: bool = True, stop_after: int | None = None) -> Decoder:
        """Train to `steps` (or `stop_after` more steps, then checkpoint and return), logging and plotting; returns
        the decoder (in eval mode once finished)."""
        metrics = self.run_dir / "metrics.jsonl"
        truncate_metrics(metrics, self.step)
        t0, end = time.perf_counter(), min(self.cfg.steps, self.step + (stop_after or self.cfg.steps))
        with open(metrics, "a") as log, tqdm(total=self.cfg.steps, initial=self.step, desc="decoder",
                                             unit="step", disable=not progress) as bar:  # fmt: skip
            while self.step < end:
                loss = self.train_step()
                if self.step % self.cfg.log_every == 0:
                    log.write(json.dumps({"step": self.step, "pair": "decoder", "loss": loss,
                                          "time": round(time.perf_counter() - t0, 3)}) + "\n")  # fmt: skip
                    log.flush()
                bar.update(1)
                if self.step % self.cfg.checkpoint_every == 0 or self.step == end:
                    self._save()
        if self.step < self.cfg.steps:
            return self.decoder
        plot_metrics(metrics, self.run_dir / "plots")
        final = self.run_dir / "final" / "decoder"
        shutil.rmtree(final, ignore_errors=True)
        self.decoder.eval().save(final)
        return self.decoder

    def _save(self) -> Path:
        """checkpoints/step_<n>, written to a temporary folder and renamed into place."""
        root = self.run_dir / "checkpoints"
        final, tmp = root / f"step_{self.step:08d}", root / f".step_{self.step:08d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.decoder.save(tmp / "decoder")
        tensors, meta = optimizer_tensors(self.opt)
        save_file(tensors, str(tmp / "optimizer.safetensors"), metadata=meta)
        save_file({"torch": torch.get_rng_state(), "gen": self.g.get_state()}, str(tmp / "rng.safetensors"))
        (tmp / "trainer.json").write_text(json.dumps({"step": self.step}) + "\n")
        publish_checkpoint(tmp, final, keep=1)
        return final

    def _load(self, path: Path) -> None:
        loaded = Decoder.load(path / "decoder")
        self.decoder.load_state_dict(loaded.state_dict())
        load_optimizer(self.opt, path / "optimizer.safetensors")
        rng = load_file(str(path / "rng.safetensors"))
        torch.set_rng_state(rng["torch"])
        self.g.set_state(rng["gen"])
        self.step = int(json.loads((path / "trainer.json").read_text())["step"])


def train_decoder(images: torch.Tensor, emb: torch.Tensor, dcfg: DecoderConfig, cfg: DecoderTrainConfig,
                  run_dir: str | Path, resume: bool = False, progress: bool = True) -> Decoder:  # fmt: skip
    """Train a decoder on images (N, 3, S, S) in [-1, 1] and their embeddings (N, D); see the module docstring."""
    return DecoderRun(images, emb, dcfg, cfg, run_dir, resume).run(progress)


__all__ = ["DecoderRun", "DecoderTrainConfig", "train_decoder"]
