"""Vectorised rasterisation of pen paths: distance-to-segment fields and their uses.

The path of each instance is `SPARSE` points, i.e. `S = SPARSE - 1` segments (pen-up segments are moved far away).
`drawn_d2` returns, for every instance, segment and pixel, the squared distance from the pixel centre to the *nearest
segment drawn so far* (a running minimum over segments in writing order). Its last slice is the finished digit
(image), slices picked at frame times give the video, slices at time-bin edges give the thermal trace.

The distance to a segment uses the separable pixel grid: with a = segment start, d = segment vector,
t = clip(((p - a) . d) / |d|^2, 0, 1) and dist^2 = |p - a - t d|^2; the x and y parts are [.., W] and [.., H] rows,
so only about ten full-size [n, S, H, W] operations are done per chunk, all in float32.
"""

import numpy as np

FAR = -1.0e4  # pen-up segments are moved here so that they never ink a pixel


def drawn_d2(points: np.ndarray, pen_down: np.ndarray, size: int) -> np.ndarray:
    """Running-minimum squared distances (n, S, size, size) float32 for points (n, S+1, 2) in pixels."""
    a = points[:, :-1].astype(np.float32)
    d = (points[:, 1:] - points[:, :-1]).astype(np.float32)
    a = np.where(pen_down[..., None], a, np.float32(FAR))  # (n, S, 2)
    d = np.where(pen_down[..., None], d, np.float32(0.0))
    inv = 1.0 / np.maximum((d**2).sum(-1), 1e-6)  # (n, S)
    grid = np.arange(size, dtype=np.float32) + 0.5
    pxa = grid - a[..., 0:1]  # (n, S, W)
    pya = grid - a[..., 1:2]  # (n, S, H)
    dx, dy = d[..., 0, None, None], d[..., 1, None, None]  # (n, S, 1, 1)
    t = (pxa * (d[..., 0:1] * inv[..., None]))[:, :, None, :] + (pya * (d[..., 1:2] * inv[..., None]))[..., None]
    np.clip(t, 0.0, 1.0, out=t)  # (n, S, H, W) position of the nearest point along each segment
    ex = pxa[:, :, None, :] - t * dx
    t *= dy
    np.subtract(pya[..., None], t, out=t)  # t now holds ey
    ex *= ex
    t *= t
    ex += t
    return np.minimum.accumulate(ex, axis=1, out=ex)


def ink_alpha(d2: np.ndarray, half_width: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a pen of the given half width (px) with an edge ramp `soft` px wide.

    d2 is (n, ..., H, W); half_width and soft are (n,).
    """
    shape = (-1,) + (1,) * (d2.ndim - 1)
    hw, sf = half_width.reshape(shape).astype(np.float32), soft.reshape(shape).astype(np.float32)
    return np.clip((hw - np.sqrt(d2)) / sf + 0.5, 0.0, 1.0)


def drawn_count(times: np.ndarray, pen_down: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index into drawn_d2's segment axis of the state at times `at` (n, K): (n, K), -1 for "nothing yet".

    A segment counts as drawn once the pen has reached its end point; times are (n, S+1) per sparse point.
    """
    done = times[:, None, 1:] <= at[..., None]  # (n, K, S)
    return done.sum(-1) - 1


def gather_states(d2: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pick running-minimum slices (n, K, H, W) at segment indices (n, K); -1 gives an empty page."""
    out = np.take_along_axis(d2, np.clip(index, 0, None)[..., None, None], axis=1)
    out[index < 0] = np.float32(1e8)
    return out


def gaussian_matrices(sigma: np.ndarray, size: int) -> np.ndarray:
    """Row-normalised Gaussian blur matrices (m, size, size) for sigmas (m,) in pixels (0 gives identity)."""
    x = np.arange(size, dtype=np.float32)
    s = np.maximum(sigma.astype(np.float32), 1e-3)[:, None, None]
    g = np.exp(-0.5 * ((x[:, None] - x[None, :]) / s) ** 2)
    return g / g.sum(-1, keepdims=True)


def blur(x: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur of images x (m, H, W) with per-image sigma (m,): G x G^T."""
    g = gaussian_matrices(sigma, x.shape[-1])
    return g @ x @ g.transpose(0, 2, 1)


def bilinear(field: np.ndarray, u: np.ndarray, v: np.ndarray, outside: float) -> np.ndarray:
    """Sample fields (n, H, W) at pixel coordinates u (x), v (y) (n, h, w); `outside` beyond the border."""
    n, h, w = field.shape
    x, y = u - 0.5, v - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    flat = np.pad(field, ((0, 0), (1, 1), (1, 1)), constant_values=outside).reshape(n, -1)
    x0, y0 = np.clip(x0 + 1, 0, w), np.clip(y0 + 1, 0, h)

    def at(yy, xx):
        return np.take_along_axis(flat, (yy * (w + 2) + xx).reshape(n, -1), 1).reshape(u.shape)

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy
