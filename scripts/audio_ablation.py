"""Audio recipe ablations: bind audio alone against a frozen, already trained image-text anchor for a few hundred
steps, one recipe change at a time, and score the held-out voices (the demo's robustness rows) and the held-out
engine. Minutes per variant on one core, instead of a whole demo run.

    python scripts/audio_ablation.py --anchor RUN/train/anchor/final/model --variants old new centre \
        --steps 600 --n-train 8000 --cache /tmp/speech-abl

The world's train/test audio and train images are rendered once and cached (`--cache`); each variant then builds
its audio inputs (pad mode, waveform augmentation, views per instance) through `bindkit.demo.data.train_audio`,
trains audio against the frozen image encoder (the demo's binding pair: batch 96, lr 4e-3, tau 0.1), and prints
one line of top-1 per robustness row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from bindkit.demo import training
from bindkit.demo.data import audio_options, train_audio
from bindkit.demo.robustness import audio_robustness
from bindkit.demo.scores import class_embeddings
from bindkit.demo.settings import Phase, demo_config
from bindkit.demo.training import _pair, _run
from bindkit.train.audio_augment import WaveAug
from bindkit.train.build import set_encoder_config
from bindkit.worlds import DigitsWorld, Instances, to_model_inputs

NONE = WaveAug(short=0.0, telephone=0.0, level_db=(0.0, 0.0), noise=0.0, reverb=0.0)
LIGHT = WaveAug(short=0.3, telephone=0.15, level_db=(-20.0, 6.0), noise=0.15, reverb=0.1)
SHORT = dataclasses.replace(NONE, short=1.0, margin_s=(0.0, 0.15))
# name -> (pad mode, augmentation of the augmented views, views per instance: the first view is the clean clip
# when views > 1, audio patch filters kept mean-free (blind to a level change of the log-mel patch))
VARIANTS: dict[str, tuple[str, WaveAug, int, bool]] = {
    "old": ("fbank", NONE, 1, False),  # main's recipe: official padding, no augmentation
    "centre": ("centre", NONE, 1, False),  # silence padding only
    "new": ("centre", WaveAug(), 1, False),  # last session's recipe
    "short": ("centre", dataclasses.replace(NONE, short=0.5), 1, False),  # short words only
    "light": ("centre", LIGHT, 1, False),
    "clean+new": ("centre", WaveAug(), 2, False),  # a clean view and an augmented view of every instance
    "clean+light": ("centre", LIGHT, 2, False),
    "clean+short": ("centre", SHORT, 2, False),  # every instance as a full clip and as its word alone
    "new x2": ("centre", WaveAug(), 2, False),  # two augmented views (only the seeds differ)
    "new+mf": ("centre", WaveAug(), 1, True),
    "clean+new+mf": ("centre", WaveAug(), 2, True),
    "old+mf": ("fbank", NONE, 1, True),
    "new+speed": ("centre", dataclasses.replace(WaveAug(), speed=0.5), 1, False),
    "clean+new+speed": ("centre", dataclasses.replace(WaveAug(), speed=0.5), 2, False),
    "speed": ("centre", dataclasses.replace(NONE, speed=0.5), 1, False),  # speed/formant change only
    "clean+short75": ("centre", dataclasses.replace(WaveAug(), short=0.75), 2, False),
    "clean+new+short": ("centre", WaveAug(), 3, False),  # as recorded, augmented, the word alone
    # + VTLP on the augmented view's log-mel rows (another vocal tract; the demo's recipe is clean+new+vtlpw)
    "clean+new+vtlp": ("centre", WaveAug(vtlp=1.0, vtlp_range=(0.85, 1.2)), 2, False),
    "clean+new+vtlpw": ("centre", WaveAug(vtlp=1.0), 2, False),
}


def world_data(n_train: int, n_test: int, seed: int, cache: Path) -> tuple[Instances, Instances, Instances]:
    """(train with image + audio, test with audio, test by the held-out engine), rendered once into `cache`."""
    import pickle

    path = cache / f"world-{n_train}-{n_test}-{seed}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    world = DigitsWorld(seed=seed)
    train = world.sample("train", n_train, seed=seed, modalities=("image", "audio"))
    test = world.sample("test", n_test, seed=seed, modalities=("audio",))
    engine = world.render(world.revoice(test), ("audio",))
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps((train, test, engine)))
    return train, test, engine


def audio_inputs(train: Instances, pad: str, aug: WaveAug, views: int, seed: int) -> torch.Tensor:
    """(n * views, 1, 1, mel, frames): with views > 1, view 0 as recorded and the others augmented."""
    cfg = demo_config()
    opts = dict(audio_options_for(cfg), pad=pad)
    if views == 3:
        return train_audio(train, cfg, opts, seed, (None, aug, SHORT))
    return train_audio(
        train, cfg, opts, seed, ((None,) if views > 1 else ()) + (aug,) * (views - (views > 1))
    )


def length_cosine(model, test: Instances, n: int = 60) -> float:
    """Median cosine between a test word loaded as a short waveform and the same word at the start of a silent
    2-s clip (the test suite's length-invariance check)."""
    from bindkit.data import load

    assert test.audio is not None and test.audio_span is not None
    clip, short, padded = int(1.995 * test.sample_rate), [], []
    for w, (a, b) in zip(test.audio[:n], test.audio_span[:n], strict=True):
        full = np.zeros(clip, np.float32)
        full[: b - a] = w[a:b]
        short.append((torch.from_numpy(w[a:b].copy()), test.sample_rate))
        padded.append((torch.from_numpy(full), test.sample_rate))
    with torch.no_grad():
        e1, e2 = (
            model.encode({"audio": load("audio", x, config=model.config)})["audio"] for x in (short, padded)
        )
    return float(torch.nn.functional.cosine_similarity(e1, e2).median())


def audio_options_for(cfg) -> dict:
    """The demo's audio loader options for the default world."""
    return audio_options(DigitsWorld(seed=0), cfg)


def run_variant(
    name: str, args, train: Instances, test: Instances, engine: Instances, images: torch.Tensor
) -> dict:
    """Train audio alone for args.steps against the frozen anchor; the robustness rows' top-1."""
    pad, aug, views, mean_free = VARIANTS[name]
    if mean_free:
        training.STEMS["audio"] = training.mean_free_
    else:
        training.STEMS.pop("audio", None)
    t0 = time.perf_counter()
    audio = audio_inputs(train, pad, aug, views, args.seed)
    t_in = time.perf_counter() - t0
    phase = Phase(steps=args.steps, batch_size=96, lr=4e-3, warmup_steps=min(60, args.steps // 10))
    pair = _pair("vision", "audio", images, audio, phase, 0.1, len(train))
    run_dir = args.cache / "runs" / f"{name.replace(' ', '_').replace('+', '-')}-{len(train)}-{args.steps}"
    res = _run([pair], phase, run_dir, args.seed, False, init=str(args.anchor),
               encoders={"vision": "frozen", "text": "frozen"})  # fmt: skip
    model = res.model
    assert model is not None
    opts = dict(audio_options_for(model.config), pad=pad)
    set_encoder_config(model, "audio", preprocess={**model.config.encoders["audio"].preprocess, **opts})
    rows = audio_robustness(model, class_embeddings(model), test, engine, args.seed)
    out = {"variant": name, "inputs_s": round(t_in, 1), "total_s": round(time.perf_counter() - t0, 1),
           **{k: round(v["top1"], 1) for k, v in rows.items()}}  # fmt: skip
    out["length_cosine"] = round(length_cosine(model, test), 3)
    out["per_engine_as_recorded"] = {
        k: round(v, 1) for k, v in rows["as recorded"].items() if k not in ("top1", "n")
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--anchor", type=Path, required=True, help="frozen anchor model folder (image + text trained)"
    )
    p.add_argument("--variants", nargs="+", default=["old", "new"], choices=sorted(VARIANTS))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--n-test", type=int, default=600)
    p.add_argument(
        "--subset", type=int, default=0, help="train on the first N cached instances only (0: all)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path("/tmp/speech-abl"))
    args = p.parse_args()
    t0 = time.perf_counter()
    train, test, engine = world_data(args.n_train, args.n_test, args.seed, args.cache)
    if args.subset:
        train = train.select(slice(0, args.subset))
    images = to_model_inputs(train, {"vision": demo_config().encoders["vision"].input_shape})["vision"]
    print(
        f"world ready in {time.perf_counter() - t0:.0f} s: {len(train)} train, {len(test)} test", flush=True
    )
    for name in args.variants:
        print(json.dumps(run_variant(name, args, train, test, engine, images)), flush=True)


if __name__ == "__main__":
    main()
