"""The demo's binding stage alone, at a preset's size, against an already trained anchor: the demo's world and audio
recipe, one binding run (audio, depth, thermal, IMU against the frozen image encoder), then emergent top-1 of the
bound modalities on the test split's files and the audio robustness rows. A full demo without the anchor and
text-paired runs (about half its CPU time).

    python scripts/demo_bind_only.py --anchor RUN/train/anchor/final/model --preset full --out /tmp/bind-full
    python scripts/demo_bind_only.py ... --recipe old   # official padding, one audio row per instance (main's)
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import time
from pathlib import Path

import numpy as np

import bindkit.demo.data as demo_data
from bindkit.demo import robustness, scores
from bindkit.demo.files import read_split, write_splits
from bindkit.demo.run import save_demo_model
from bindkit.demo.settings import BOUND, PRESETS, demo_config
from bindkit.demo.training import train_bound
from bindkit.evaluate import zero_shot


def use_old_recipe() -> None:
    """main's audio recipe: the official filterbank padding and one row per instance, as recorded."""
    demo_data.AUDIO_PAD = "fbank"
    demo_data.train_audio = functools.partial(demo_data.train_audio, views=(None,))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--anchor", type=Path, required=True)
    p.add_argument("--preset", default="full", choices=sorted(PRESETS))
    p.add_argument("--recipe", default="new", choices=["new", "old"])
    p.add_argument("--steps", type=int, default=0, help="binding steps (0: the preset's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    if args.recipe == "old":
        use_old_recipe()
    s, t0 = PRESETS[args.preset], time.perf_counter()
    if args.steps:
        s = dataclasses.replace(s, bind=dataclasses.replace(s.bind, steps=args.steps, warmup_steps=1))
    data = demo_data.build_data(demo_config(), s.n_anchor, s.n_train, s.n_test, s.n_probe_pool, args.seed)
    times = {"world": time.perf_counter() - t0}
    print(f"world {times['world']:.0f} s; audio rows {len(data.train_inputs['audio'])}", flush=True)
    res = train_bound(data.train_inputs, args.anchor, s.bind, args.out / "train" / "bind", args.seed, False)
    model = res.model
    assert model is not None
    times["bind"] = time.perf_counter() - t0 - times["world"]
    save_demo_model(model, data, args.out / "model")
    test = read_split(write_splits(data, args.out)["test"], model.config)
    cls, y = scores.class_embeddings(model), np.asarray(test.digits)
    out = {m: zero_shot(scores.embed(model, m, test.inputs[m]), y, cls)["top1"] for m in BOUND}
    rows = robustness.audio_robustness(model, cls, data.test, data.engine_test, args.seed)
    result = {"preset": s.name, "recipe": args.recipe, "emergent_top1": out, "audio_robustness": rows,
              "times_s": times | {"total": time.perf_counter() - t0}}  # fmt: skip
    (args.out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(out))
    print("\n".join(robustness.robustness_md(rows)))


if __name__ == "__main__":
    main()
