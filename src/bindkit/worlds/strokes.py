"""Digit stroke paths: allographs in a unit box, writer styles, and the time law of the pen.

Coordinates are (x, y) with x to the right and y *down*, in a unit box; a digit spans roughly y in [0.1, 0.9].
Each allograph is a list of strokes (pen-down runs), each stroke a chain of pieces (lines, ellipse arcs, cubic
Beziers, parametric curves). A template is sampled once to `DENSE` points by arc length, with points shared out
among strokes in proportion to their length, so every instance of every digit has the same array shape and the
writer/instance perturbations are plain vectorised numpy on `[n, DENSE, 2]`.
"""

from dataclasses import dataclass
from functools import cache

import numpy as np

DENSE = 128  # points per digit path (all strokes), used for IMU and time
SPARSE = 48  # points per digit path used for rendering (distance-to-segment fields)


def line(*pts: tuple[float, float]) -> np.ndarray:
    """A polyline through the given points, finely sampled: (m, 2)."""
    p = np.asarray(pts, np.float64)
    t = np.linspace(0, 1, 16)[:, None]
    return np.concatenate([a + t * (b - a) for a, b in zip(p[:-1], p[1:], strict=False)])


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float) -> np.ndarray:
    """Ellipse arc from angle a0 to a1 (degrees; y down, so increasing angles run clockwise on screen): (m, 2)."""
    a = np.radians(np.linspace(a0, a1, max(8, int(abs(a1 - a0) / 4))))
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], 1)


def bezier(p0, p1, p2, p3) -> np.ndarray:
    """Cubic Bezier curve: (64, 2)."""
    t = np.linspace(0, 1, 64)[:, None]
    p0, p1, p2, p3 = (np.asarray(p, np.float64) for p in (p0, p1, p2, p3))
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3


def figure_eight(top_first: bool) -> np.ndarray:
    """A closed 8 crossing itself at the centre, starting at the top: (m, 2)."""
    t = np.linspace(0, 2 * np.pi, 160)
    s = -1.0 if top_first else 1.0
    return np.stack([0.5 + s * 0.2 * np.sin(2 * t), 0.5 - 0.4 * np.cos(t)], 1)


def chain(*pieces: np.ndarray) -> np.ndarray:
    """Join pieces into one stroke (each piece should start where the previous ended)."""
    return np.concatenate(pieces)


# Each digit: several allographs; each allograph: a list of strokes in drawing order.
ALLOGRAPHS: dict[int, list[list[np.ndarray]]] = {
    0: [
        [arc(0.5, 0.5, 0.24, 0.4, -90, -455)],
        [arc(0.5, 0.5, 0.24, 0.4, -90, -450), line((0.66, 0.22), (0.34, 0.78))],
        [arc(0.5, 0.5, 0.19, 0.4, -60, -420)],
    ],
    1: [
        [line((0.5, 0.1), (0.5, 0.9))],
        [line((0.34, 0.3), (0.53, 0.1), (0.53, 0.9))],
        [line((0.34, 0.3), (0.53, 0.1), (0.53, 0.9)), line((0.34, 0.9), (0.72, 0.9))],
    ],
    2: [
        [chain(arc(0.5, 0.32, 0.22, 0.22, 200, 400), line((0.6685, 0.4614), (0.27, 0.9), (0.76, 0.9)))],
        [
            chain(
                bezier((0.28, 0.28), (0.3, 0.0), (0.82, 0.04), (0.7, 0.38)),
                bezier((0.7, 0.38), (0.6, 0.6), (0.36, 0.75), (0.25, 0.9)),
                bezier((0.25, 0.9), (0.42, 0.84), (0.6, 0.95), (0.78, 0.88)),
            )
        ],
    ],  # fmt: skip
    3: [
        [chain(arc(0.5, 0.3, 0.2, 0.2, 200, 450), arc(0.5, 0.7, 0.23, 0.2, 270, 510))],
        [chain(line((0.28, 0.1), (0.72, 0.1), (0.45, 0.42)), arc(0.5, 0.67, 0.24, 0.24, 250, 505))],
    ],
    4: [
        [line((0.3, 0.1), (0.25, 0.58), (0.76, 0.58)), line((0.63, 0.1), (0.63, 0.92))],
        [line((0.63, 0.92), (0.63, 0.1), (0.22, 0.64), (0.8, 0.64))],
        [line((0.6, 0.1), (0.22, 0.64), (0.8, 0.64)), line((0.63, 0.32), (0.63, 0.92))],
    ],
    5: [
        [
            chain(line((0.33, 0.1), (0.3, 0.46)), arc(0.48, 0.66, 0.23, 0.23, 225, 500)),
            line((0.33, 0.1), (0.74, 0.1)),
        ],
        [chain(line((0.74, 0.1), (0.33, 0.1), (0.3, 0.46)), arc(0.48, 0.66, 0.23, 0.23, 225, 500))],
    ],
    6: [
        [
            chain(
                bezier((0.68, 0.1), (0.4, 0.15), (0.26, 0.45), (0.29, 0.7)),
                arc(0.5, 0.7, 0.21, 0.2, 180, -180),
            )
        ],
        [chain(line((0.63, 0.1), (0.3, 0.64)), arc(0.5, 0.7, 0.21, 0.2, 197, -163))],
    ],
    7: [
        [line((0.25, 0.12), (0.76, 0.12), (0.42, 0.9))],
        [line((0.25, 0.12), (0.76, 0.12), (0.42, 0.9)), line((0.38, 0.52), (0.7, 0.52))],
        [chain(line((0.25, 0.12), (0.76, 0.12)), bezier((0.76, 0.12), (0.6, 0.4), (0.48, 0.6), (0.45, 0.9)))],
    ],
    8: [
        [figure_eight(top_first=True)],
        [chain(arc(0.5, 0.29, 0.18, 0.19, 90, 450), arc(0.5, 0.69, 0.22, 0.21, -90, -450))],
        [figure_eight(top_first=False)],
    ],
    9: [
        [chain(arc(0.5, 0.3, 0.2, 0.2, 0, -360), line((0.7, 0.3), (0.68, 0.9)))],
        [chain(arc(0.5, 0.3, 0.2, 0.2, 0, -360), bezier((0.7, 0.3), (0.7, 0.6), (0.6, 0.85), (0.35, 0.9)))],
        [arc(0.5, 0.3, 0.2, 0.2, 10, -350), line((0.7, 0.12), (0.7, 0.9))],
    ],
}
N_ALLOGRAPHS = max(len(v) for v in ALLOGRAPHS.values())


def _resample(stroke: np.ndarray, m: int) -> np.ndarray:
    """m points evenly spaced by arc length along a polyline: (m, 2)."""
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    u = np.linspace(0, s[-1], m)
    return np.stack([np.interp(u, s, stroke[:, 0]), np.interp(u, s, stroke[:, 1])], 1)


def _share(lengths: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Split `total` points among strokes in proportion to length, at least `minimum` each."""
    k = np.maximum(minimum, np.floor(lengths / lengths.sum() * total).astype(int))
    k[np.argmax(lengths)] += total - k.sum()
    return k


@dataclass(frozen=True)
class Template:
    """One allograph sampled to fixed sizes."""

    dense: np.ndarray  # (DENSE, 2) points by arc length
    stroke: np.ndarray  # (DENSE,) stroke index of each point
    sparse_index: np.ndarray  # (SPARSE,) indices into dense; stroke ends included
    knots: np.ndarray  # (K,) dense indices where the pen is momentarily still: stroke ends and sharp corners


@cache
def template(digit: int, allograph: int) -> Template:
    """The sampled template of one allograph (cached)."""
    strokes = ALLOGRAPHS[digit][allograph]
    lengths = np.array([np.linalg.norm(np.diff(s, axis=0), axis=1).sum() for s in strokes])
    k_dense, k_sparse = _share(lengths, DENSE, 8), _share(lengths, SPARSE, 3)
    dense_parts, id_parts, sparse, start = [], [], [], 0
    for j, (s, kd, ks) in enumerate(zip(strokes, k_dense, k_sparse, strict=True)):
        dense_parts.append(_resample(s, kd))
        id_parts.append(np.full(kd, j))
        sparse.append(start + np.round(np.linspace(0, kd - 1, ks)).astype(int))
        start += kd
    dense, ids = np.concatenate(dense_parts), np.concatenate(id_parts)
    return Template(dense, ids, np.concatenate(sparse), knots(dense, ids))


def knots(dense: np.ndarray, ids: np.ndarray, corner_deg: float = 40.0) -> np.ndarray:
    """Stroke starts and ends plus sharp corners (turn above corner_deg at a local maximum), in order."""
    out = []
    for j in np.unique(ids):
        idx = np.nonzero(ids == j)[0]
        v = np.diff(dense[idx], axis=0)
        ang = np.abs(
            np.degrees(np.angle(np.exp(1j * np.diff(np.arctan2(v[:, 1], v[:, 0])))))
        )  # turn per vertex
        peak = (ang > corner_deg) & (ang >= np.roll(ang, 1)) & (ang > np.roll(ang, -1))
        out += [idx[0], *(idx[1:-1][peak]), idx[-1]]
    return np.array(out)


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile s(tau) on [0, 1] (bell-shaped speed, zero speed and acceleration at ends)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10 - 15 * tau + 6 * tau**2)
