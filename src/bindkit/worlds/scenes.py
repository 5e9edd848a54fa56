"""Scenes of the digits world: 2 to 4 digits by different writers on one page, boxes and classes known.

A scene is a canvas of 2 x 2 cells, each cell the size of one ordinary world frame (so digits appear at the scale
the models were trained on); its digits sit in distinct cells, so they never overlap. Every digit is an ordinary
world instance (its own writer, allograph, slant, size) laid out in the canvas, then shrunk into its cell. All the
digits of a scene and one empty page share the scene's surface, ink, lighting and random streams, so they render
the same page; the canvas is the empty page plus each digit's difference from it. Depth and thermal compose the
same way. Scenes are seeded and drawn from one split's writers, so train and test scenes are disjoint like the
rest of the world.

    world = DigitsWorld(seed=0)
    test = sample_scenes(world, "test", 100, seed=0)
    test.images.shape, test.boxes[0], test.digits[0]    # (100, 128, 128, 3) [[x0, y0, x1, y1], ...] [3, 7]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .digits import SPLITS, DigitsWorld, Instances
from .paths import Geometry

GRID = 2  # cells per side
SCENE_SEED = 1_000_003  # offsets the sample seed so scene digits never repeat a plain sample's instances
PIXEL_MODALITIES = ("image", "depth", "thermal")


@dataclass
class Scenes:
    """A batch of scenes: canvases, and per scene its digits, their boxes (x0, y0, x1, y1 pixels) and writers."""

    split: str
    seed: int
    digits: list[np.ndarray]  # per scene (k,) classes
    boxes: list[np.ndarray]  # per scene (k, 4) float32 pixel boxes in canvas coordinates
    writers: list[np.ndarray]  # per scene (k,) writer ids, all distinct
    surface: list[str]
    lighting: list[str]
    canvas: int
    images: np.ndarray | None = field(default=None, repr=False)  # uint8 (n, S, S, 3)
    depth: np.ndarray | None = field(default=None, repr=False)  # float32 (n, S, S)
    thermal: np.ndarray | None = field(default=None, repr=False)  # float32 (n, S, S)
    pages: np.ndarray | None = field(default=None, repr=False)  # uint8 (n, S, S, 3): each image without its digits

    def __len__(self) -> int:
        return len(self.digits)

    def digit_area_share(self) -> float:
        """Mean share of the canvas covered by one digit's box: the chance rate of pointing at it."""
        share = [(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / self.canvas**2 for b in self.boxes]
        return float(np.mean(np.concatenate(share)))


def sample_scenes(world: DigitsWorld, split: str, n: int, seed: int = 0, counts: tuple[int, ...] = (2, 3, 4),
                  modalities: tuple[str, ...] = ("image",)) -> Scenes:  # fmt: skip
    """Draw and render n scenes of a split, each with k digits, k drawn from `counts` (values in 1..4)."""
    _check_args(split, n, seed, counts, modalities)
    canvas = GRID * world.image_size
    writers = (len(world.writers("train")), len(world.writers("test")))
    page = DigitsWorld(seed=world.seed, image_size=canvas, window_seconds=world.window_seconds, writers=writers)
    rng = np.random.default_rng([world.seed, SPLITS[split], seed, 7919])
    ks = rng.choice(np.asarray(counts), n)
    pool = page.sample(split, int(ks.sum()) * 3 + 30, seed=SCENE_SEED + seed, modalities=())
    picks, cells = _pick(pool, ks, rng)
    batch = _layout(pool, picks, cells, canvas)
    page.render(batch, set(modalities))
    return _compose(batch, pool, picks, split, seed, canvas, modalities)


def _check_args(split: str, n: int, seed: int, counts: tuple[int, ...], modalities: tuple[str, ...]) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not counts or any(not 1 <= k <= GRID * GRID for k in counts):
        raise ValueError(f"counts must be digits per scene in 1..{GRID * GRID}, got {counts!r}")
    bad = set(modalities) - set(PIXEL_MODALITIES)
    if bad or not modalities:
        raise ValueError(f"scene modalities must be some of {PIXEL_MODALITIES}, got {modalities!r}")


def _pick(pool: Instances, ks: np.ndarray, rng: np.random.Generator) -> tuple[list[list[int]], list[np.ndarray]]:
    """Per scene: pool rows of k distinct digits by k distinct writers (each row used once), and their cells."""
    free = {d: [int(i) for i in np.flatnonzero(pool.digit == d)] for d in range(10)}
    picks, cells = [], []
    for k in ks:
        rows: list[int] = []
        for d in rng.permutation(10):
            writers = {int(pool.writer[r]) for r in rows}
            row = next((r for r in free[int(d)] if int(pool.writer[r]) not in writers), None)
            if row is not None:
                free[int(d)].remove(row)
                rows.append(row)
            if len(rows) == k:
                break
        if len(rows) < k:
            raise RuntimeError("scene pool exhausted (too few distinct writers in this split)")
        picks.append(rows)
        cells.append(rng.permutation(GRID * GRID)[:k])
    return picks, cells


def _layout(pool: Instances, picks: list[list[int]], cells: list[np.ndarray], canvas: int) -> Instances:
    """One render batch: per scene its digits shrunk into their cells, then an empty page (digit moved off it);
    every row of a scene takes the scene's surface, ink, lighting, relief and random streams (its first digit's)."""
    rows, scene_of, offsets = [], [], []
    cell = canvas / GRID
    for s, (rs, cs) in enumerate(zip(picks, cells, strict=True)):
        for r, c in zip(rs, cs, strict=True):
            rows.append(r)
            scene_of.append(s)
            offsets.append((c % GRID * cell, c // GRID * cell))
        rows.append(rs[0])  # the empty page: the first digit moved far off the canvas
        scene_of.append(s)
        offsets.append((10.0 * canvas, 10.0 * canvas))
    batch = pool.select(np.array(rows))
    first = np.array([picks[s][0] for s in scene_of])
    g = batch.geometry
    dense = g.dense / GRID + np.array(offsets)[:, None, :]
    batch = replace(batch, geometry=replace(g, dense=dense, width=g.width / GRID),
                    surface=[pool.surface[i] for i in first], ink=[pool.ink[i] for i in first],
                    lighting=[pool.lighting[i] for i in first], relief=[pool.relief[i] for i in first],
                    entropy=pool.entropy[first])  # fmt: skip
    return batch


def _box(g: Geometry, i: int, canvas: int) -> np.ndarray:
    """(4,) x0, y0, x1, y1 of row i's ink (path extent plus half the pen width and half the widest soft edge, as
    `pixels._reach` counts it), inside the canvas."""
    p, half = g.dense[i], g.width[i] / 2 + 0.8 * canvas / 64
    box = np.array([p[:, 0].min() - half, p[:, 1].min() - half, p[:, 0].max() + half, p[:, 1].max() + half])
    return np.clip(box, 0, canvas).astype(np.float32)


def _compose(batch: Instances, pool: Instances, picks: list[list[int]], split: str,
             seed: int, canvas: int, modalities: tuple[str, ...]) -> Scenes:  # fmt: skip
    """Canvas = empty page + the sum of each digit's difference from it (digits never overlap)."""
    out: dict[str, list[np.ndarray]] = {m: [] for m in modalities}
    pages: list[np.ndarray] = []
    boxes, at = [], 0
    for rs in picks:
        k = len(rs)
        boxes.append(np.stack([_box(batch.geometry, at + j, canvas) for j in range(k)]))
        for m, key in (("image", "images"), ("depth", "depth"), ("thermal", "thermal")):
            if m in modalities:
                arr = getattr(batch, key)[at : at + k + 1].astype(np.float32)  # k digits, then the page
                out[m].append(arr[k] + (arr[:k] - arr[k]).sum(0))
                if m == "image":
                    pages.append(arr[k])
        at += k + 1
    first = [rs[0] for rs in picks]
    scenes = Scenes(split, seed, [pool.digit[rs] for rs in picks], boxes, [pool.writer[rs] for rs in picks],
                    [pool.surface[i] for i in first], [pool.lighting[i] for i in first], canvas)  # fmt: skip
    if "image" in out:
        scenes.images = np.clip(np.rint(np.stack(out["image"])), 0, 255).astype(np.uint8)
        scenes.pages = np.stack(pages).astype(np.uint8)
    if "depth" in out:
        scenes.depth = np.stack(out["depth"])
    if "thermal" in out:
        scenes.thermal = np.clip(np.stack(out["thermal"]), 0, 1)
    return scenes
