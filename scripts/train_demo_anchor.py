"""Train the demo's pretrained image-text anchor and write it into the package (`bindkit/assets/demo_anchor/`).

One seeded command, about 15 minutes in one CPU thread:

    python scripts/train_demo_anchor.py                      # the shipped recipe (A.AnchorRecipe's defaults)
    python scripts/train_demo_anchor.py --steps 600 --out /tmp/a             # a quick experiment
    python scripts/train_demo_anchor.py --score src/bindkit/assets/demo_anchor  # its figures (or a run's model/)

It prints the anchor's image zero-shot on held-out writers and its text-query pointing on held-out scenes, and
records them with the recipe and the weights' sha256 in recipe.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch

from bindkit.demo import anchor as A
from bindkit.demo.training import train_anchor


def score(folder: Path, n_scenes: int) -> None:
    """Print the held-out figures of an anchor folder or a bindkit model folder."""
    from bindkit.checkpoint import load_model

    model = A.load_anchor(folder) if (folder / A.RECIPE).is_file() else load_model(folder, ["vision", "text"])
    methods = ("crops", "value", "tokens", "local")
    print(json.dumps(A.score_anchor(model, n_scenes=n_scenes, methods=methods)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(A.AnchorRecipe):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    ap.add_argument("--out", type=Path, default=None, help="asset folder (default: the package's)")
    ap.add_argument("--run-dir", type=Path, default=None, help="training run folder (default: a temporary one)")
    ap.add_argument("--eval-scenes", type=int, default=200)
    ap.add_argument("--score", type=Path, metavar="FOLDER",
                    help="only score an anchor folder (or a demo run's model/) with every dense method, then exit")
    args = ap.parse_args()
    if args.score:
        score(args.score, args.eval_scenes)
        return
    recipe = A.AnchorRecipe(**{f.name: getattr(args, f.name) for f in dataclasses.fields(A.AnchorRecipe)})
    torch.manual_seed(recipe.seed)
    t0 = time.perf_counter()
    inputs = A.anchor_inputs(recipe)
    print(f"data: {len(inputs['vision'])} pairs in {time.perf_counter() - t0:.0f} s", flush=True)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="demo-anchor-"))
    result = train_anchor(inputs, recipe.phase(), run_dir / "anchor", recipe.seed, progress=True)
    assert result.model is not None
    model = result.model.eval()
    kept = A.zero_unseen_tokens_(model, inputs["text"])
    figures = A.score_anchor(model, n_scenes=args.eval_scenes, seed=recipe.seed) | {"token_rows": kept,
                                                                                    "seconds": time.perf_counter() - t0}
    print(json.dumps(figures), flush=True)
    out = A.save_anchor(model, args.out or A.shipped_anchor_dir(), recipe, figures)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
