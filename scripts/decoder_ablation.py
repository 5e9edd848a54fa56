"""Train the demo's unCLIP decoder with one change and score it, as docs/applications.md's decoder tables were made.

    python scripts/decoder_ablation.py RUN --train '{"steps": 600, "stroke_weight": 32}' --tag sw32
    python scripts/decoder_ablation.py RUN --load sw32 --prior --tag sw32-prior   # draw again, no training

RUN is a `bindkit demo` run directory (its model, test/ and probe/). Overrides are JSON objects of
`DecoderConfig` (--dec), `DecoderTrainConfig` (--train) and diffusers `UNet2DConditionModel` keyword arguments
(--unet); the base is the demo's `full` stage preset. Prints one JSON line per guidance scale: the share of held-out
rows (`--per-digit` per digit) drawn as their digit per source, their mean, and `train`, the share of 100 training
images re-drawn from their own embeddings as the digit the anchor reads in the original (underfitting vs not
generalising).
"""

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

from bindkit.apps import decoder as decmod
from bindkit.apps.generate import model_fingerprint
from bindkit.checkpoint import load_model
from bindkit.demo import apps_generate as ag
from bindkit.demo import scores
from bindkit.train.decoder import train_decoder


def args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--dec", default="{}", help="DecoderConfig overrides (JSON)")
    p.add_argument("--train", default="{}", help="DecoderTrainConfig overrides (JSON)")
    p.add_argument("--unet", default="{}", help="UNet2DConditionModel keyword overrides (JSON)")
    p.add_argument("--guidance", default="3", help="comma-separated guidance scales")
    p.add_argument("--per-digit", type=int, default=10)
    p.add_argument("--prior", action="store_true", help="draw through a mean-shift prior fitted on RUN/probe")
    p.add_argument("--load", default="", help="a previous --tag to draw from instead of training")
    p.add_argument("--out", type=Path, default=Path("decoder-ablation"))
    p.add_argument("--tag", required=True)
    return p.parse_args()


def patch_unet(kw: dict) -> None:
    """Make the decoder build its UNet with extra keyword arguments."""
    import diffusers

    base = diffusers.UNet2DConditionModel

    class UNet(base):  # type: ignore[misc, valid-type]
        def __init__(self, **k):
            super().__init__(**(k | kw))

    diffusers.UNet2DConditionModel = UNet


def main() -> None:
    a = args()
    model = load_model(a.run / "model", device="cpu").eval()
    gs, size = ag.PRESETS["full"], model.config.encoders["vision"].input_shape[-1]
    x = ag.world_images(0, gs.n_images, size)  # (N, 3, S, S)
    emb = scores.embed(model, "vision", x)
    hemb, y, _ = ag.held_out(a.run, model, a.per_digit)
    if a.prior:
        prior = ag.fit_prior(a.run, model, emb)
        hemb = {m: prior.shift(e, m) for m, e in hemb.items()}
    if json.loads(a.unet):
        patch_unet(json.loads(a.unet))
    dcfg = dataclasses.replace(gs.decoder, embed_dim=model.config.out_dim, image_size=size,
                               model_key=model_fingerprint(model), **json.loads(a.dec))  # fmt: skip
    tcfg = dataclasses.replace(gs.train, **json.loads(a.train))
    tcfg = dataclasses.replace(tcfg, checkpoint_every=tcfg.steps, warmup_steps=min(50, tcfg.steps // 10))
    t0 = time.perf_counter()
    if a.load:
        dec = decmod.Decoder.load(a.out / a.load / "final" / "decoder")
    else:
        shutil.rmtree(a.out / a.tag, ignore_errors=True)
        dec = train_decoder(ag.to_pixels(x) * 2 - 1, emb, dcfg, tcfg, a.out / a.tag, progress=False)
    train_s, cls = time.perf_counter() - t0, scores.class_embeddings(model)
    for g in [float(v) for v in a.guidance.split(",")]:
        draw = lambda e: dec.sample(e, guidance=g, seed=0)  # noqa: B023, E731
        res = {"train": ag.hit_rate(model, draw(emb[:100]), ag.classify(model, x[:100], cls), cls)}
        res |= {m: ag.hit_rate(model, draw(hemb[m]), y, cls) for m in ag.SOURCES}
        mean = float(np.mean([res[m] for m in ag.SOURCES]))
        print(json.dumps({"tag": a.tag, "guidance": g, "mean": round(mean, 1), **res, "train_s": round(train_s)}))


if __name__ == "__main__":
    main()
