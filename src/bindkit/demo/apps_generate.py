"""The applications stage, images from any modality: the unCLIP decoder stage in the digits world, scored.

A small diffusion decoder (`bindkit.apps.decoder`) learns to draw the world's train images from the frozen anchor's
embeddings of those images, and nothing else. It is then given embeddings of held-out recordings (speech of unseen
voices), captions, IMU, depth and thermal of unseen writers, which it never saw, and the frozen anchor classifies
what it draws (zero-shot, the report's classifier). The share drawn as the right digit is reported per source beside
the anchor's accuracy on the real test images of the same rows (the ceiling) and chance; a second column draws
through the decoder's mean-shift prior (`bindkit.apps.prior`, fitted on the probe split and saved in the decoder
folder; opt-in for `generate`). The decoder is saved at
`<run>/model/decoder/`, where `bindkit generate --model <run>/model --pipeline <run>/model/decoder` finds it; its
training run is `<run>/train/decoder/`, the grid `<run>/plots/generate.png` (one row per source, one column per digit).

`update_run(run_dir)` runs the stage on an existing run directory and rewrites its report.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bindkit.apps.decoder import Decoder, DecoderConfig
from bindkit.apps.generate import model_fingerprint
from bindkit.apps.prior import MeanShiftPrior
from bindkit.data import CLIP_MEAN, CLIP_STD, load, tokenize
from bindkit.model import ImageBind
from bindkit.train.decoder import DecoderTrainConfig, train_decoder
from bindkit.worlds import DigitsWorld
from bindkit.worlds.inputs import image_tensor

from . import scores
from .files import read_manifest

SOURCES = ("image", "audio", "text", "imu", "depth", "thermal")  # grid rows; image: held-out images re-drawn


@dataclass(frozen=True)
class GenerateSettings:
    """Decoder size and schedule, and how much is drawn for the score."""

    n_images: int  # world train images (and their anchor embeddings) the decoder learns from
    decoder: DecoderConfig
    train: DecoderTrainConfig
    per_digit: int  # held-out rows per digit drawn from, per source
    steps: int  # sampling steps (DDIM)


def _settings(steps: int, n_images: int, per_digit: int, sample_steps: int, batch: int = 64) -> GenerateSettings:
    train = DecoderTrainConfig(steps=steps, batch_size=batch, lr=2e-3, warmup_steps=min(50, steps // 10),
                               checkpoint_every=steps)  # fmt: skip
    # (32, 64) channels: at a fixed CPU budget more steps of a small UNet beat fewer of a wide one (0.57 M weights)
    dcfg = DecoderConfig(channels=(32, 64), cond_channels=4, steps=sample_steps)
    return GenerateSettings(n_images, dcfg, train, per_digit, sample_steps)


PRESETS = {
    # batch 128: 1.8x batch 64's training time (172 vs 95 s on 2 cores) for 3,000 steps of 64's quality (100 held-out
    # rows per source, one thread: mean 52.0% against 47.3% for batch 64 and 52.8% for 3,000 steps of 64)
    "full": _settings(steps=1500, n_images=6000, per_digit=5, sample_steps=20, batch=128),
    # 400 steps drew at chance from the quick model bound to the shipped anchor (25 of 180 in the decoder test's
    # setting, 10% chance), 800 steps 77 of 180
    "quick": _settings(steps=800, n_images=6000, per_digit=2, sample_steps=12),
    "tiny": _settings(steps=800, n_images=3000, per_digit=3, sample_steps=10),
}


def world_images(seed: int, n: int, size: int) -> torch.Tensor:
    """The first `n` train-split images of the demo's world at `size` px, CLIP-normalised (N, 3, size, size)."""
    images = DigitsWorld(seed=seed).sample("train", n, seed=seed, modalities=("image",)).images
    assert images is not None  # rendered: asked for
    return image_tensor(images, size)


def to_pixels(x: torch.Tensor) -> torch.Tensor:
    """CLIP-normalised images -> [0, 1]."""
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x * std + mean).clamp(0, 1)


def to_inputs(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> the anchor's input, through 8-bit values as a PNG file would hold them."""
    q = (pixels * 255).round() / 255
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (q - mean) / std


def fit_decoder(run: Path, model: ImageBind, seed: int, gs: GenerateSettings,
                progress: bool) -> tuple[Decoder, MeanShiftPrior]:  # fmt: skip
    """Train the decoder on world train images and the frozen anchor's embeddings of them; save it by the model,
    with its mean-shift prior; returns both."""
    size = model.config.encoders["vision"].input_shape[-1]
    x = world_images(seed, gs.n_images, size)  # (N, 3, S, S)
    emb = scores.embed(model, "vision", x)  # (N, D) unit
    dcfg = dataclasses.replace(gs.decoder, embed_dim=model.config.out_dim, image_size=size,
                               model_key=model_fingerprint(model))  # fmt: skip
    train_dir, out = run / "train" / "decoder", run / "model" / "decoder"
    for old in (train_dir, out):  # a run that had the stage trains afresh
        shutil.rmtree(old, ignore_errors=True)
    dec = train_decoder(to_pixels(x) * 2 - 1, emb, dcfg, gs.train, train_dir, progress=progress)
    dec.save(out)
    prior = fit_prior(run, model, emb)
    prior.save(out)
    return dec, prior


def fit_prior(run: Path, model: ImageBind, image_emb: torch.Tensor) -> MeanShiftPrior:
    """The decoder's mean-shift prior: each other source's mean embedding over the probe split's files (train
    writers and voices; one mean per modality, no pairs, no labels), the image mean over the decoder's training
    embeddings (N, D)."""
    manifest = run / "probe" / "manifest.jsonl"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: the decoder's prior is fitted on the run's probe split")
    others = tuple(m for m in SOURCES if m != "image")
    inputs = source_inputs(model, read_manifest(manifest), manifest.parent, others)
    means = {m: scores.embed(model, m, x) for m, x in inputs.items()}
    return MeanShiftPrior.fit({"image": image_emb, **means})


def source_inputs(model: ImageBind, rows: list[dict], folder: Path,
                  sources: tuple[str, ...] = SOURCES) -> dict[str, torch.Tensor]:  # fmt: skip
    """Each source's model input for manifest rows: files through `bindkit.data.load`, captions tokenised."""
    inputs = {m: load(m, [folder / r["files"][m] for r in rows], config=model.config) for m in sources if m != "text"}
    if "text" in sources:
        ctx = model.config.encoders["text"].input_shape[0]
        inputs["text"] = tokenize([r["caption"] for r in rows], context_length=ctx)
    return inputs


def held_out(run: Path, model: ImageBind, per_digit: int) -> tuple[dict[str, torch.Tensor], np.ndarray, torch.Tensor]:
    """Embeddings of the first `per_digit` test rows of each digit for every source, their digits, and the real
    images' anchor inputs."""
    manifest = run / "test" / "manifest.jsonl"
    rows = read_manifest(manifest)
    pick = [i for d in range(10) for i in [j for j, r in enumerate(rows) if r["digit"] == d][:per_digit]]
    rows = [rows[i] for i in pick]
    inputs = source_inputs(model, rows, manifest.parent)
    emb = {m: scores.embed(model, m, inputs[m]) for m in SOURCES}
    return emb, np.asarray([r["digit"] for r in rows]), inputs["image"]


def classify(model: ImageBind, inputs: torch.Tensor, cls: torch.Tensor) -> np.ndarray:
    """The anchor's zero-shot digit for each image input (N, 3, S, S)."""
    return (scores.embed(model, "vision", inputs) @ cls.T).argmax(1).numpy()


def hit_rate(model: ImageBind, drawn: torch.Tensor, y: np.ndarray, cls: torch.Tensor) -> float:
    """% of drawn images (N, 3, S, S) in [0, 1] that the anchor classifies as `y`."""
    return float((classify(model, to_inputs(drawn), cls) == y).mean() * 100)


def score(model: ImageBind, dec: Decoder, prior: MeanShiftPrior, run: Path, gs: GenerateSettings,
          seed: int) -> dict[str, Any]:  # fmt: skip
    """Draw from every source's held-out embeddings as they are (the default) and through the mean-shift prior
    (`prior`); the share classified as the row's digit, per source."""
    emb, y, real = held_out(run, model, gs.per_digit)
    cls = scores.class_embeddings(model)
    out: dict[str, Any] = {"chance": 10.0, "n_per_source": len(y), "steps": gs.steps, "prior": {},
                           "real_images": float((classify(model, real, cls) == y).mean() * 100)}  # fmt: skip
    drawn: dict[str, torch.Tensor] = {}
    t0, n = time.perf_counter(), 0
    for m in SOURCES:
        drawn[m] = dec.sample(emb[m], steps=gs.steps, seed=seed)  # (N, 3, S, S) in [0, 1]
        out[m], n = hit_rate(model, drawn[m], y, cls), n + len(y)
        shifted = drawn[m]  # the prior leaves image queries as they are
        if m != "image":
            shifted, n = dec.sample(prior.shift(emb[m], m), steps=gs.steps, seed=seed), n + len(y)
        out["prior"][m] = hit_rate(model, shifted, y, cls)
    out["sample_s_per_image"] = (time.perf_counter() - t0) / n
    out["grid"] = str(plot_grid(drawn, y, run / "plots" / "generate.png").relative_to(run))
    return out


def plot_grid(drawn: dict[str, torch.Tensor], y: np.ndarray, path: Path) -> Path:
    """PNG grid: one row per source, one column per digit (the first image drawn for that digit)."""
    from .report import _figure

    fig = _figure(10 * 0.8 + 0.8, len(drawn) * 0.8 + 0.4)
    first = [int(np.nonzero(y == d)[0][0]) for d in range(10)]
    for i, (m, imgs) in enumerate(drawn.items()):
        for d, j in enumerate(first):
            ax = fig.add_subplot(len(drawn), 10, i * 10 + d + 1)
            ax.imshow(imgs[j].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if d == 0:
                ax.set_ylabel(m, fontsize=8)
            if i == 0:
                ax.set_title(str(d), fontsize=8)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def run_stage(run: Path, model: ImageBind, preset: str, seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train the decoder, draw and score; returns the report's `applications.generate` entry."""
    gs = PRESETS.get(preset, PRESETS["quick"])  # a custom demo preset draws like the quick one
    t0 = time.perf_counter()
    dec, prior = fit_decoder(run, model, seed, gs, progress)
    t1 = time.perf_counter()
    out = score(model, dec, prior, run, gs, seed)
    return out | {"train_s": t1 - t0, "score_s": time.perf_counter() - t1, "decoder": "model/decoder",
                  "n_images": gs.n_images, "train_steps": gs.train.steps}  # fmt: skip


def markdown(g: dict[str, Any]) -> list[str]:
    """The report's section for this stage."""
    lines = [
        "### Generate: images from any modality (an unCLIP decoder on the anchor's image space)", "",
        f"A diffusion decoder trained on {g['n_images']} world images and the frozen anchor's image embeddings only "
        f"({g['train_steps']} steps), given embeddings of held-out recordings it never saw; {g['n_per_source']} "
        f"images per source, {g['steps']} DDIM steps. Share the frozen anchor classifies as the source's digit, from "
        "the embedding as it is (the default) and moved by the decoder's mean-shift prior (`bindkit.apps.prior`: from "
        "its modality's mean embedding to the image mean, means over the probe split):", "",
        "| source | embedding as it is (%) | with the prior (%) |", "|---|---|---|",
        *[f"| {m} | {g[m]:.1f} | {g.get('prior', {}).get(m, float('nan')):.1f} |" for m in SOURCES],
        f"| real test images (ceiling) | {g['real_images']:.1f} | |", f"| chance | {g['chance']:.1f} | |", "",
        f"Decoder training {g['train_s']:.0f} s, drawing and scoring {g['score_s']:.0f} s "
        f"({g['sample_s_per_image']:.3f} s per image). Grid: `{g['grid']}`.", "",
        f"![images drawn per source and digit]({g['grid']})", "",
    ]  # fmt: skip
    return lines


def update_run(run_dir: str | Path, preset: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the stage on an existing demo run directory and rewrite its report.json and report.md."""
    from bindkit.checkpoint import load_model

    from . import report

    run = Path(run_dir)
    result = json.loads((run / "report.json").read_text())
    s = result["settings"]
    model = load_model(run / "model", device="cpu").eval()
    g = run_stage(run, model, preset or s["preset"], s["seed"], progress)
    result.setdefault("applications", {})["generate"] = g
    result["timings_s"]["applications"] = g["train_s"] + g["score_s"]
    report.write_json(result, run / "report.json")
    report.write_markdown(result, run / "report.md")
    return g
