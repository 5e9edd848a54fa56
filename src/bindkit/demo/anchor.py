"""The demo's image-text anchor: what it trains on, how it is scored, and the pretrained anchor bindkit ships.

The paper binds every modality to a frozen, pretrained image-text model. The demo's anchor is trained by bindkit
itself on the digits world (`scripts/train_demo_anchor.py`, one seeded command, a longer schedule than a demo run
can afford), and its vision and text encoders ship in `bindkit/assets/demo_anchor/`; `bindkit demo` loads them
frozen and only binds (`--train-anchor` trains one from scratch instead, the demo's older path).

The anchor sees single world frames with their captions, and crops of multi-digit train scenes (`worlds.scenes`)
at the scale scenes are seen at: a crop holding a whole digit gets that digit's caption, a crop holding none (blank
page, or only parts of digits) gets a caption of the empty surface. Trained on centred digits alone, the image
encoder gave confident digit scores to off-centre and empty crops, so heatmaps peaked between digits (pointing
31% with text queries, chance 6%); see docs/demo.md for the measurements.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from bindkit.checkpoint import save_model
from bindkit.model import ImageBind
from bindkit.worlds import DigitsWorld, to_model_inputs
from bindkit.worlds.captions import CAPTION_TEMPLATES, SURFACE_PHRASES, fill
from bindkit.worlds.digits import Instances, size_name
from bindkit.worlds.inputs import image_tensor, text_tensor
from bindkit.worlds.scenes import GRID, Scenes, sample_scenes

from .settings import Phase, demo_config

ANCHOR_ENCODERS = ("vision", "text")
ASSET = "demo_anchor"  # folder under bindkit/assets
WEIGHTS, RECIPE = "anchor.safetensors", "recipe.json"
TOKENS = "encoders.text.stem.token_embedding.weight"
BLANK_TEMPLATES = [
    "a blank patch of {surface}",
    "an empty stretch of {surface}",
    "{surface} with nothing written on it",
    "no digit, just {surface}",
    "part of a page of {surface}",
    "a bit of {surface} between the digits",
]


@dataclass(frozen=True)
class AnchorRecipe:
    """The anchor's data and schedule: single train frames, crops of train scenes, CLIP-style steps."""

    frames: int = 16000  # single-digit train frames with their captions
    scenes: int = 1000  # train-writer scenes (1 to 4 digits) cut into crops
    crops_per_scene: int = 8
    # frames whose caption is redrawn from the templates naming the surface: image + audio arithmetic needs the image
    # embedding to carry the surface, binding loses by it (what audio or IMU cannot know is noise to their loss).
    # Full preset, seed 0, share 0 / 0.25 / 0.5: audio 76.8 / 78.3 / 73.7, IMU 92.7 / 94.3 / 88.7, image + audio
    # arithmetic 26.9 / 42.8 / 44.9% (docs/demo.md)
    surface_share: float = 0.25
    centre_px: float = 4.0  # a crop is captioned with its digit when that digit is whole and this near its centre
    steps: int = 2500
    batch_size: int = 96
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 80
    seed: int = 0

    def phase(self) -> Phase:
        """The training phase of `bindkit.demo.training.train_anchor`."""
        return Phase(steps=self.steps, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                     warmup_steps=self.warmup_steps)  # fmt: skip


def blank_caption(surface: str, rng: np.random.Generator) -> str:
    """A caption of an empty bit of page: the surface, no digit."""
    return BLANK_TEMPLATES[int(rng.integers(len(BLANK_TEMPLATES)))].format(surface=SURFACE_PHRASES[surface])


def crop_label(boxes: np.ndarray, ox: int, oy: int, side: int, centre: float = float("inf"), tol: float = 1.0,
               ) -> int:  # fmt: skip
    """Index of the digit whose box (model pixels, (k, 4)) lies wholly in the crop at (ox, oy), its centre within
    `centre` px of the crop's (per axis); -1 when none, -2 when several do (left out: a caption names one digit)."""
    inside = ((boxes[:, 0] >= ox - tol) & (boxes[:, 1] >= oy - tol) & (boxes[:, 2] <= ox + side + tol)
              & (boxes[:, 3] <= oy + side + tol))  # fmt: skip
    mid = (boxes[:, :2] + boxes[:, 2:]) / 2 - np.array([ox, oy]) - side / 2  # (k, 2) offset from the crop's centre
    hits = np.flatnonzero(inside & (np.abs(mid) <= centre).all(1))
    return int(hits[0]) if len(hits) == 1 else -1 if not len(hits) else -2


def crop_offsets(boxes: np.ndarray, side: int, n: int, centre: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) crop corners: one per digit, centred on it within `centre` px, the rest uniform over the canvas."""
    top = (GRID - 1) * side
    mids = (boxes[:n, :2] + boxes[:n, 2:]) / 2 - side / 2  # corners that centre each digit
    r = min(centre, side / 2)
    aimed = np.clip(np.rint(mids + rng.uniform(-r, r, mids.shape)), 0, top).astype(np.int64)
    rest = rng.integers(0, top + 1, size=(n - len(aimed), 2))
    return np.concatenate([aimed.reshape(-1, 2), rest])


def scene_crops(scenes: Scenes, side: int, per_scene: int, seed: int, centre: float = float("inf"),
                ) -> tuple[torch.Tensor, list[str], np.ndarray]:  # fmt: skip
    """side-px crops of scenes seen at GRID * side px, one aimed at each digit and the rest at random: inputs
    (N, 3, side, side), captions, and the digit each shows (-1: none whole and near the centre, a blank caption)."""
    assert scenes.images is not None, "scenes rendered without images"
    x = image_tensor(scenes.images, size=GRID * side)  # (n, 3, 2 side, 2 side)
    rng = np.random.default_rng([seed, 15485863])
    scale = GRID * side / scenes.canvas
    crops, texts, digits = [], [], []
    for i in range(len(scenes)):
        boxes = scenes.boxes[i] * scale
        for ox, oy in crop_offsets(boxes, side, per_scene, centre, rng):
            j = crop_label(boxes, int(ox), int(oy), side, centre)
            if j == -2:
                continue
            crops.append(x[i, :, oy : oy + side, ox : ox + side])
            texts.append(scenes.captions[i][j] if j >= 0 else blank_caption(scenes.surface[i], rng))
            digits.append(int(scenes.digits[i][j]) if j >= 0 else -1)
    return torch.stack(crops), texts, np.array(digits)


def surface_captions(frames: Instances, share: float, seed: int) -> list[str]:
    """The frames' captions, each redrawn with probability `share` from the templates that name the surface."""
    named = [t for t in CAPTION_TEMPLATES if "{surface}" in t]
    rng = np.random.default_rng([seed, 7727])
    out = list(frames.captions)
    for i in np.flatnonzero(rng.random(len(out)) < share):
        surface = frames.surface[i]
        out[i] = fill(named[int(rng.integers(len(named)))], int(frames.digit[i]), ink=frames.ink[i],
                      medium="chalk" if surface == "chalkboard" else "ink", surface=SURFACE_PHRASES[surface],
                      size=size_name(float(frames.size[i])), light=frames.lighting[i])  # fmt: skip
    return out


def anchor_inputs(recipe: AnchorRecipe, world: DigitsWorld | None = None) -> dict[str, torch.Tensor]:
    """The anchor's training pairs: {vision: (N, 3, s, s), text: (N, L)}, train frames then scene crops."""
    world = world or DigitsWorld(seed=recipe.seed)
    enc = demo_config().encoders
    side, ctx = enc["vision"].input_shape[-1], enc["text"].input_shape[0]
    frames = world.sample("train", recipe.frames, seed=recipe.seed, modalities=("image", "text"))
    frames = replace(frames, captions=surface_captions(frames, recipe.surface_share, recipe.seed))
    out = to_model_inputs(frames, {"vision": enc["vision"].input_shape, "text": enc["text"].input_shape})
    if recipe.scenes:
        scenes = sample_scenes(world, "train", recipe.scenes, seed=recipe.seed, counts=(1, 2, 3, 4))
        crops, texts, _ = scene_crops(scenes, side, recipe.crops_per_scene, recipe.seed, recipe.centre_px)
        out = {"vision": torch.cat([out["vision"], crops]),
               "text": torch.cat([out["text"], text_tensor(texts, context_length=ctx)])}  # fmt: skip
    return out


def anchor_state(model: ImageBind) -> dict[str, torch.Tensor]:
    """The anchor's tensors (vision and text encoders with their heads); token rows stored as (ids, rows)."""
    sd = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()
          if k.split(".")[1] in ANCHOR_ENCODERS}  # fmt: skip
    table = sd.pop(TOKENS)  # (V, D): only rows of tokens seen in training differ from zero
    ids = torch.nonzero(table.abs().sum(1) > 0)[:, 0]
    return sd | {TOKENS + ".ids": ids.to(torch.int64), TOKENS + ".rows": table[ids].contiguous()}


def zero_unseen_tokens_(model: ImageBind, text: torch.Tensor) -> int:
    """Zero the token-table rows of tokens absent from `text` (N, L) ids (they only carry their random init); keeps
    the shipped file small. Returns how many rows are kept."""
    table = model.get_parameter(TOKENS)
    keep = torch.zeros(len(table), dtype=torch.bool)
    keep[torch.unique(text)] = True
    with torch.no_grad():
        table[~keep] = 0
    return int(keep.sum())


def save_anchor(model: ImageBind, folder: Path, recipe: AnchorRecipe, figures: dict[str, Any]) -> Path:
    """Write anchor.safetensors and recipe.json (recipe, figures, sha256 fingerprint of the weights file)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(anchor_state(model), folder / WEIGHTS, metadata={"format": "bindkit-demo-anchor"})
    meta = {"config": demo_config().name, "encoders": list(ANCHOR_ENCODERS), "recipe": asdict(recipe),
            "figures": figures, "sha256": file_sha256(folder / WEIGHTS),
            "command": "python scripts/train_demo_anchor.py"}  # fmt: skip
    (folder / RECIPE).write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_anchor_dir() -> Path:
    """The folder of the pretrained demo anchor inside the installed package."""
    return Path(str(resources.files("bindkit") / "assets" / ASSET))


def load_anchor(folder: Path | None = None, seed: int = 0) -> ImageBind:
    """The anchor as an `imagebind_demo` model holding only its vision and text encoders; checks the weights file
    against its recorded fingerprint first."""
    folder = Path(folder) if folder is not None else shipped_anchor_dir()
    meta = json.loads((folder / RECIPE).read_text())
    got = file_sha256(folder / WEIGHTS)
    if got != meta["sha256"]:
        raise ValueError(f"{folder / WEIGHTS}: sha256 {got[:12]}... does not match recipe.json's {meta['sha256'][:12]}...")
    sd = load_file(folder / WEIGHTS)
    ids, rows = sd.pop(TOKENS + ".ids"), sd.pop(TOKENS + ".rows")
    torch.manual_seed(seed)
    model = ImageBind(demo_config().select(ANCHOR_ENCODERS))
    table = torch.zeros_like(model.get_parameter(TOKENS))
    table[ids] = rows
    sd[TOKENS] = table
    model.load_state_dict(sd)  # strict: every tensor of both encoders, nothing else
    return model.eval()


def pretrained_anchor_stage(run_dir: Path, folder: Path | None = None) -> Path:
    """The demo's anchor stage without training: the shipped anchor saved as `run_dir/final/model` (where a
    trained anchor's model goes; a bindkit model folder holding vision and text, what binding starts from) with its
    recipe.json in `run_dir`."""
    folder = Path(folder) if folder is not None else shipped_anchor_dir()
    model = load_anchor(folder)
    out = save_model(model, run_dir / "final" / "model")
    (run_dir / RECIPE).write_text((folder / RECIPE).read_text())
    return out


@torch.no_grad()
def score_anchor(model: ImageBind, n_frames: int = 600, n_scenes: int = 200, seed: int = 0,
                 methods: tuple[str, ...] = ("crops", "value")) -> dict[str, Any]:  # fmt: skip
    """Image zero-shot top-1 on held-out writers' frames, and pointing with text queries on held-out 3-digit scenes
    per dense method (the applications stage's measure), in %."""
    from .apps_locate import pick_queries, pointing, scene_inputs
    from .scores import class_embeddings, embed, zero_shot

    model.eval()
    world = DigitsWorld(seed=seed)
    side = model.config.encoders["vision"].input_shape[-1]
    test = world.sample("test", n_frames, seed=seed, modalities=("image",))
    assert test.images is not None
    cls = class_embeddings(model)  # (10, D)
    top1 = zero_shot(embed(model, "vision", image_tensor(test.images, side)), test.digit, cls)["top1"]
    out: dict[str, Any] = {"zero_shot_top1": top1, "n_frames": n_frames, "n_scenes": n_scenes}
    if n_scenes:
        from bindkit.dense import dense_embeddings

        scenes = sample_scenes(world, "test", n_scenes, seed=seed, counts=(3,))
        x, q = scene_inputs(model, scenes), pick_queries((cls, np.arange(10)), scenes)
        enc = model.encoder("vision")
        out["pointing_text"] = {m: pointing(dense_embeddings(enc, x, m), q, scenes, GRID * side)[0] for m in methods}
    return out
