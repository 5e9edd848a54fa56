"""Writers and written instances: seeded styles, per-instance geometry in pixels, and the pen's time law.

A writer is a seeded perturbation set (slant, width scaling, a smooth wobble field, preferred allographs, pen width,
speed, pen grip). An instance applies its writer's style plus its own small jitter to an allograph template and
places it in the frame. The pen then runs along the path with a minimum-jerk profile per stroke and per pen-up move,
so every modality that needs time (video, thermal, IMU) reads the same clock.
"""

from dataclasses import dataclass

import numpy as np

from .strokes import ALLOGRAPHS, DENSE, min_jerk, template

N_WAVES = 3  # sinusoidal components of a wobble field
N_ALLOGRAPHS_PER_DIGIT = np.array([len(ALLOGRAPHS[d]) for d in range(10)])


@dataclass
class WriterStyles:
    """Per-writer style parameters, arrays indexed by writer id."""

    slant: np.ndarray  # (W,) degrees, positive leans right
    aspect: np.ndarray  # (W,) width scale
    wobble: np.ndarray  # (W, N_WAVES, 5) amplitude, fx, fy, phase, direction
    preferred: np.ndarray  # (W, 10) preferred allograph per digit
    loyalty: np.ndarray  # (W,) probability of using the preferred allograph
    width: np.ndarray  # (W,) pen width, fraction of the digit height
    speed: np.ndarray  # (W,) path lengths (digit heights) per second
    pause: np.ndarray  # (W,) seconds of pen-up between strokes
    elevation: np.ndarray  # (W,) pen elevation above the surface, degrees
    azimuth: np.ndarray  # (W,) pen azimuth in the surface plane (from +x, counter-clockwise), degrees
    hand_lag: (
        np.ndarray
    )  # (W,) seconds: the hand follows the tip with this Gaussian lag (pen tilts meanwhile)
    left_handed: np.ndarray  # (W,) bool


def wobble_fields(rng: np.random.Generator, n: int, amp_lo: float, amp_hi: float) -> np.ndarray:
    """Random smooth displacement fields: (n, N_WAVES, 5) = amplitude, fx, fy, phase, direction."""
    amp = rng.uniform(amp_lo, amp_hi, (n, N_WAVES)) / np.sqrt(N_WAVES)
    freq = rng.uniform(-2.0, 2.0, (n, N_WAVES, 2))
    phase, direction = rng.uniform(0, 2 * np.pi, (2, n, N_WAVES))
    return np.concatenate([amp[..., None], freq, phase[..., None], direction[..., None]], -1)


def writer_styles(seed: int, n_writers: int) -> WriterStyles:
    """All writers' styles, drawn from one stream per world seed (writer w is the same for any split size)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
    left = rng.random(n_writers) < 0.12
    azimuth = np.where(left, -135.0, -45.0) + rng.normal(0, 12, n_writers)
    return WriterStyles(
        slant=np.clip(rng.normal(8, 9, n_writers), -12, 30),
        aspect=rng.uniform(0.72, 1.2, n_writers),
        wobble=wobble_fields(rng, n_writers, 0.01, 0.04),
        preferred=rng.integers(0, N_ALLOGRAPHS_PER_DIGIT[None, :], (n_writers, 10)),
        loyalty=rng.uniform(0.6, 0.95, n_writers),
        width=rng.uniform(0.035, 0.075, n_writers),
        speed=rng.uniform(2.2, 4.0, n_writers),
        pause=rng.uniform(0.06, 0.2, n_writers),
        elevation=rng.uniform(45, 70, n_writers),
        azimuth=azimuth,
        hand_lag=rng.uniform(0.08, 0.25, n_writers),
        left_handed=left,
    )


def apply_wobble(c: np.ndarray, fields: np.ndarray) -> np.ndarray:
    """Displace points c (n, P, 2) by sum of sinusoids a*sin(2pi f.c + phase) along each wave's direction."""
    amp, fx, fy, phase, direction = np.moveaxis(fields, -1, 0)  # each (n, N_WAVES)
    arg = 2 * np.pi * (c[:, :, None, 0] * fx[:, None] + c[:, :, None, 1] * fy[:, None]) + phase[:, None]
    disp = amp[:, None] * np.sin(arg)  # (n, P, N_WAVES)
    dx = (disp * np.cos(direction)[:, None]).sum(-1)
    dy = (disp * np.sin(direction)[:, None]).sum(-1)
    return c + np.stack([dx, dy], -1)


@dataclass
class Geometry:
    """Per-instance path in pixels and its clock."""

    dense: np.ndarray  # (n, DENSE, 2) pen-tip path, pixels (x right, y down)
    stroke: np.ndarray  # (n, DENSE) stroke index per point
    sparse_index: np.ndarray  # (n, SPARSE) rendering points (indices into dense)
    knot_t: np.ndarray  # (n, K) times (s) of the clock knots: stroke ends and corners, where the pen is still
    knot_u: np.ndarray  # (n, K) dense index at each knot; min-jerk easing between knots
    times: np.ndarray  # (n, DENSE) time (s) the pen passes each point
    width: np.ndarray  # (n,) pen width, pixels

    @property
    def start(self) -> np.ndarray:
        """(n,) time the first stroke starts."""
        return self.knot_t[:, 0]

    @property
    def end(self) -> np.ndarray:
        """(n,) time the last stroke ends."""
        return self.knot_t[:, -1]


def place(
    digits, allographs, styles: WriterStyles, writers, jitter, slant, rotation, size, centre, image_size
):
    """Apply writer style and instance jitter to the templates: pixel paths (n, DENSE, 2), strokes, sparse, knots.

    jitter: (n, N_WAVES, 5) instance wobble; slant (deg) and rotation (rad): (n,); size: digit height / frame;
    centre: (n, 2) pixels.
    """
    temps = [template(int(d), int(a)) for d, a in zip(digits, allographs, strict=True)]
    c = np.stack([t.dense for t in temps]) - 0.5  # (n, DENSE, 2) centred unit box
    c = apply_wobble(apply_wobble(c, styles.wobble[writers]), jitter)
    c[..., 0] *= styles.aspect[writers][:, None]
    c[..., 0] -= c[..., 1] * np.tan(np.radians(slant))[:, None]
    cos, sin = np.cos(rotation)[:, None], np.sin(rotation)[:, None]
    c = np.stack([cos * c[..., 0] - sin * c[..., 1], sin * c[..., 0] + cos * c[..., 1]], -1)
    px = c * (size * image_size)[:, None, None] + centre[:, None, :]
    strokes = np.stack([t.stroke for t in temps])
    sparse = np.stack([t.sparse_index for t in temps])
    k = max(len(t.knots) for t in temps)
    knots = np.stack([np.concatenate([t.knots, np.repeat(t.knots[-1:], k - len(t.knots))]) for t in temps])
    return px, strokes, sparse, knots


def clock(px: np.ndarray, strokes: np.ndarray, knots: np.ndarray, speed: np.ndarray, pause: np.ndarray):
    """Knots of the pen clock, with minimum-jerk easing between consecutive knots.

    knots (n, K) are dense indices where the pen is still (stroke ends, sharp corners; padded by repeating the last).
    A drawing interval lasts its path length / speed + 0.05 s; a pen-up move (between strokes) lasts
    pause + distance / speed. Returns knot_t (n, K) starting at 0, knot_u (n, K) and point times (n, DENSE).
    """
    seg = np.linalg.norm(np.diff(px, axis=1), axis=-1)  # (n, DENSE-1); pen-up jumps included
    cum = np.concatenate([np.zeros((len(px), 1)), np.cumsum(seg, 1)], 1)
    dist = np.diff(np.take_along_axis(cum, knots, 1), axis=1)  # (n, K-1)
    gap = np.diff(np.take_along_axis(strokes, knots, 1), axis=1) != 0
    dur = np.where(gap, pause[:, None] + dist / speed[:, None], dist / speed[:, None] + 0.05)
    dur = np.where(np.diff(knots, axis=1) == 0, 0.0, dur)  # padding
    knot_t = np.concatenate([np.zeros((len(px), 1)), np.cumsum(dur, 1)], 1)
    knot_u = knots.astype(np.float64)
    return knot_t, knot_u, point_times(knot_t, knot_u)


_TAU = np.linspace(0, 1, 257)
_S = min_jerk(_TAU)


def point_times(knot_t: np.ndarray, knot_u: np.ndarray) -> np.ndarray:
    """Invert the clock: time at which the pen reaches each integer dense index: (n, DENSE)."""
    u = np.arange(DENSE, dtype=np.float64)
    # knot interval of each point: the last knot with knot_u <= u (intervals of zero width are skipped)
    j = (u[None, :, None] >= knot_u[:, None, :]).sum(-1) - 1  # (n, DENSE)
    j = np.clip(j, 0, knot_u.shape[1] - 2)
    t0, t1 = np.take_along_axis(knot_t, j, 1), np.take_along_axis(knot_t, j + 1, 1)
    u0, u1 = np.take_along_axis(knot_u, j, 1), np.take_along_axis(knot_u, j + 1, 1)
    frac = np.where(u1 > u0, (u - u0) / np.maximum(u1 - u0, 1e-9), 1.0)
    return t0 + np.interp(np.clip(frac, 0, 1), _S, _TAU) * (t1 - t0)


def progress(knot_t: np.ndarray, knot_u: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Fractional dense index u(t) of the pen at times t (T,): (n, T), min-jerk eased between knots."""
    j = (t[None, :, None] >= knot_t[:, None, :]).sum(-1) - 1  # (n, T)
    j = np.clip(j, 0, knot_t.shape[1] - 2)
    t0, t1 = np.take_along_axis(knot_t, j, 1), np.take_along_axis(knot_t, j + 1, 1)
    u0, u1 = np.take_along_axis(knot_u, j, 1), np.take_along_axis(knot_u, j + 1, 1)
    tau = np.where(t1 > t0, (t[None, :] - t0) / np.maximum(t1 - t0, 1e-9), 1.0)
    return u0 + min_jerk(tau) * (u1 - u0)


def interpolate(points: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Points (n, P, D) at fractional indices u (n, T): (n, T, D), linear between neighbours."""
    i0 = np.clip(np.floor(u).astype(int), 0, points.shape[1] - 2)
    w = np.clip(u - i0, 0, 1)[..., None]
    a = np.take_along_axis(points, i0[..., None], 1)
    b = np.take_along_axis(points, i0[..., None] + 1, 1)
    return a + w * (b - a)
