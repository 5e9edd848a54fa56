"""The pixel modalities of a batch: image, video, thermal and depth from one rasterisation per chunk.

States (times at which the page is looked at) per instance: the video frame times, the thermal bin edges and
"finished" (+inf), only those the requested modalities need. They are sorted per instance for the running minimum
of `render.rasterize`, and each modality picks its own states back out.
"""

from functools import lru_cache

import numpy as np

from . import heat, relief
from .paths import Geometry, interpolate, progress
from .render import compose, ink_alpha, rasterize, segment_states
from .seeds import rngs
from .surfaces import INKS, light_field, surface_texture

STATE_BUDGET = 6_000_000  # float32 cells of distance states per chunk (~24 MB)
MAX_CHUNK = 256  # instances per chunk: bounds the windows and textures
VIDEO_BUDGET = 8_000_000  # float32 cells of video frame temporaries per chunk (~32 MB each)


def render_pixels(inst, want: set, size: int, frames: int, window: float) -> dict[str, np.ndarray]:
    """{modality: array} for the requested ones of image, video, thermal, depth."""
    g = inst.geometry
    n = len(g.dense)
    parts, slots = [], {}
    if "video" in want:
        slots["video"] = np.arange(frames)
        parts.append(np.broadcast_to(frame_times(frames, window), (n, frames)))
    if "thermal" in want:
        slots["thermal"] = sum(len(p[0]) for p in parts) + np.arange(heat.BINS)
        parts.append(heat.bin_edges(g.start, g.end))
    at = np.concatenate(parts + [np.full((n, 1), np.inf)], 1)  # (n, M); "finished" sorts last
    order = np.argsort(at, axis=1, kind="stable")
    back = np.argsort(order, axis=1)
    points = np.take_along_axis(g.dense, g.sparse_index[..., None], 1)  # (n, SPARSE, 2)
    times = np.take_along_axis(g.times, g.sparse_index, 1)
    strokes = np.take_along_axis(g.stroke, g.sparse_index, 1)
    pen = strokes[:, 1:] == strokes[:, :-1]
    chunk = min(MAX_CHUNK, STATE_BUDGET // (at.shape[1] * size * size))
    if "video" in want:
        chunk = min(chunk, VIDEO_BUDGET // (frames * size * size * 3))
    chunk = max(1, chunk)
    out: dict[str, list[np.ndarray]] = {m: [] for m in ("image", "video", "thermal", "depth") if m in want}
    for lo in range(0, n, chunk):
        c = slice(lo, min(n, lo + chunk))
        reach = _reach(float(g.width[c].max()) / 2, size, want)
        state = segment_states(times[c], np.take_along_axis(at[c], order[c], 1))
        d2 = rasterize(points[c], pen[c], state, at.shape[1], size, reach)
        picked = {k: np.take_along_axis(d2, back[c][:, v, None, None], 1) for k, v in slots.items()}
        picked["final"] = d2[:, -1]
        for m, arr in _chunk(inst, c, picked, want, size, window).items():
            out[m].append(arr)
    return {m: np.concatenate(parts) for m, parts in out.items()}


def _reach(half: float, size: int, want: set) -> float:
    """Pixels from the path beyond which no requested modality needs distances (widest stroke + its edge ramp)."""
    scale = size / 64
    need = [half + 0.8 * scale]  # pen ink: half width + half the widest soft edge
    if "thermal" in want:
        need.append(1.9 * half + 0.6 * scale)  # finger: up to 1.9 half widths, 1.2 px ramp
    if "depth" in want:
        need.append(1.7 * half + 0.75 * scale)  # relief: up to 1.7 half widths, 1.5 px ramp
    return max(need) + 0.5


def frame_times(frames: int, window: float) -> np.ndarray:
    """(T,) times of the video frames: evenly spaced, the last at the end of the window."""
    return (np.arange(frames) + 1) / frames * window


def _chunk(inst, c: slice, d2: dict, want: set, size: int, window: float) -> dict:
    """Render the pixel modalities of one chunk from its picked distance states."""
    g, ent, out = inst.geometry, inst.entropy[c], {}
    half = g.width[c] / 2
    if want & {"image", "video"}:
        out.update(_photos(inst, c, d2, want, size, window))
    if "thermal" in want:
        out["thermal"] = heat.thermal(d2["thermal"], g.start[c], g.end[c], half, inst.surface[c],
                                      rngs(ent, "thermal"), size)  # fmt: skip
    if "depth" in want:
        out["depth"] = relief.depth(d2["final"], half, inst.relief[c], rngs(ent, "depth"), size)
    return out


def _photos(inst, c: slice, d2: dict, want: set, size: int, window: float) -> dict:
    """The photo (finished digit) and the video frames (digit so far, pen tip shown while writing)."""
    g, ent = inst.geometry, inst.entropy[c]
    surfs, grains, lights, noise_stds, softs, strength = [], [], [], [], [], []
    for r, s, lt in zip(rngs(ent, "scene"), inst.surface[c], inst.lighting[c], strict=True):
        tex, fine = surface_texture(s, r, size)
        lf, ns = light_field(lt, r, size)
        surfs.append(tex)
        grains.append(fine)
        lights.append(lf)
        noise_stds.append(ns * r.uniform(0.7, 1.3))
        softs.append(r.uniform(0.6, 1.6) * size / 64)
        strength.append(r.uniform(0.85, 1.0))
    surf, light, grain = np.stack(surfs), np.stack(lights), np.stack(grains)
    noise_std, soft, half = np.array(noise_stds, np.float32), np.array(softs), g.width[c] / 2
    chalk = np.array([s == "chalkboard" for s in inst.surface[c]])[:, None, None]
    texture = np.where(chalk, np.clip(0.75 + 0.3 * grain, 0, 1), 1.0) * np.array(strength)[:, None, None]
    ink = np.array([INKS[k] for k in inst.ink[c]], np.float32)
    out = {}
    if "image" in want:
        alpha = ink_alpha(d2["final"], half, soft) * texture.astype(np.float32)
        noise = np.stack([r.standard_normal((size, size, 3), np.float32) for r in rngs(ent, "image")])
        out["image"] = compose(alpha, surf, ink, light, noise_std, noise)
    if "video" in want:
        frames = d2["video"].shape[1]
        alpha = ink_alpha(d2["video"], half, soft) * texture[:, None].astype(np.float32)
        np.maximum(alpha, pen_tip(g, c, frame_times(frames, window), size), out=alpha)
        bank = noise_frames(size)
        start = np.array([r.integers(len(bank)) for r in rngs(ent, "video")])
        noise = bank[(start[:, None] + np.arange(frames)) % len(bank)]  # (n, T, H, W, 3)
        out["video"] = compose(alpha, surf, ink, light, noise_std, noise)
    return out


@lru_cache(maxsize=4)
def noise_frames(size: int, count: int = 64) -> np.ndarray:
    """A fixed bank of sensor-noise frames (count, H, W, 3) for videos (drawing fresh noise per frame is slow)."""
    return np.random.default_rng(4099).standard_normal((count, size, size, 3), np.float32)


def pen_tip(g: Geometry, c: slice, t: np.ndarray, size: int) -> np.ndarray:
    """Coverage (n, T, H, W) of the pen's tip at frame times t, shown only while the digit is being written."""
    tip = interpolate(g.dense[c], progress(g.knot_t[c], g.knot_u[c], t)).astype(np.float32)  # (n, T, 2)
    writing = (t[None] >= g.start[c, None]) & (t[None] <= g.end[c, None])
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx, dy = (grid - tip[..., 0:1]) ** 2, (grid - tip[..., 1:2]) ** 2  # (n, T, W), (n, T, H)
    dist = np.sqrt(dx[:, :, None, :] + dy[..., None])
    radius = (g.width[c] * 1.2 + 1.3).astype(np.float32)[:, None, None, None]
    cover = np.clip(radius - dist, 0, 1, out=dist)
    return cover * writing[..., None, None]
