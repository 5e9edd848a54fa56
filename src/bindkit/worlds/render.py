"""Vectorised rasterisation of pen paths: distance-to-segment fields in windows, and their uses.

The path of each instance is `SPARSE` points, i.e. `S = SPARSE - 1` segments; pen-up segments ink nothing. Each
pen-down segment only reaches pixels within `reach` (half pen width + edge ramp), so its squared distance field is
computed on a small K x K window around it (all windows of a chunk at once, [n, S, K, K]) and scatter-minimised into
the frames. A segment is scattered into the first *state* (a time at which the page is looked at: a video frame, the
edge of a thermal time bin, the finished digit) whose time is after the segment was drawn; a running minimum over
the state axis then gives, per state, the distance to the nearest segment drawn by that time.

Distance to a segment: with a = start, d = segment vector, t = clip(((p - a) . d) / |d|^2, 0, 1) and
dist^2 = |p - a - t d|^2; the window grid is separable, so x and y parts are [.., K] rows.
"""

import numpy as np

EMPTY = np.float32(1e8)  # squared distance of a pixel no segment reaches


def rasterize(points, pen_down, state, n_states: int, size: int, reach: float) -> np.ndarray:
    """Squared distance to the nearest segment drawn by each state: (n, n_states, size, size) float32.

    points (n, S+1, 2) pixels; pen_down (n, S) bool; state (n, S) the first state index that shows each segment;
    reach: pixels beyond which distances are not needed (they stay EMPTY or larger).
    """
    pen_down = pen_down & (state < n_states)  # segments drawn after the last state are never shown
    a = points[:, :-1].astype(np.float32)
    d = (points[:, 1:] - points[:, :-1]).astype(np.float32)
    extent = np.abs(d[pen_down]).max() if pen_down.any() else 0.0
    k = int(np.ceil(extent + 2 * reach)) + 2
    origin = np.floor(np.minimum(points[:, :-1], points[:, 1:]) - reach).astype(np.int64)  # (n, S, 2)
    offs = np.arange(k, dtype=np.float32) + 0.5
    rel = origin.astype(np.float32) - a  # (n, S, 2) window corner relative to the segment start
    pxa = rel[..., 0:1] + offs  # (n, S, K) window pixel x minus segment start
    pya = rel[..., 1:2] + offs
    inv = 1.0 / np.maximum((d**2).sum(-1), 1e-6)[..., None]
    t = (pxa * (d[..., 0:1] * inv))[:, :, None, :] + (pya * (d[..., 1:2] * inv))[..., None]
    np.clip(t, 0.0, 1.0, out=t)  # (n, S, K, K)
    ex = pxa[:, :, None, :] - t * d[..., 0, None, None]
    t *= d[..., 1, None, None]
    np.subtract(pya[..., None], t, out=t)  # t now holds ey
    ex *= ex
    t *= t
    ex += t
    return _scatter_states(ex, origin, pen_down, state, n_states, size)


def _scatter_states(d2w, origin, pen_down, state, n_states: int, size: int) -> np.ndarray:
    """Scatter-min the windows (n, S, K, K) into (n, n_states, size, size), then a running min over states.

    The target planes get one scratch row and column (size + 1 square): window pixels outside the frame and whole
    pen-up windows are sent there, so the flat index is a single broadcast add of a row term and a column term.
    """
    n, s, k, _ = d2w.shape
    side = size + 1
    ix = origin[..., 0:1] + np.arange(k)  # (n, S, K)
    iy = origin[..., 1:2] + np.arange(k)
    ix = np.where((ix >= 0) & (ix < size), ix, size)
    iy = np.where((iy >= 0) & (iy < size) & pen_down[..., None], iy, size)
    plane = (np.arange(n)[:, None] * n_states + np.minimum(state, n_states - 1)) * side * side  # (n, S)
    flat = (plane[..., None] + iy * side)[..., None] + ix[:, :, None, :]  # (n, S, K, K)
    out = np.full((n, n_states, side, side), EMPTY, np.float32)
    np.minimum.at(out.reshape(-1), flat.reshape(-1), d2w.reshape(-1))
    out = out[:, :, :size, :size]
    for j in range(1, n_states):  # running min over states (faster than a strided accumulate)
        np.minimum(out[:, j], out[:, j - 1], out=out[:, j])
    return out


def segment_states(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """State index (n, S) of each segment: the first of the sorted state times `at` (n, M) at or after its end.

    times (n, S+1) per sparse point; segments finished after the last state time get M (never shown).
    """
    return (at[:, None, :] < times[:, 1:, None]).sum(-1)


def ink_alpha(d2: np.ndarray, half_width: np.ndarray, soft: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of a pen of the given half width (px) with an edge ramp `soft` px wide.

    d2 is (n, ..., H, W); half_width and soft are (n,).
    """
    shape = (-1,) + (1,) * (d2.ndim - 1)
    hw, sf = half_width.reshape(shape).astype(np.float32), soft.reshape(shape).astype(np.float32)
    return np.clip((hw - np.sqrt(d2)) / sf + 0.5, 0.0, 1.0)


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
    x = np.clip(u - 0.5, -1, w).astype(np.float32)  # +-1 border of `outside` in the padded field
    y = np.clip(v - 0.5, -1, h).astype(np.float32)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    padded = np.pad(
        field.astype(np.float32), ((0, 0), (1, 2), (1, 2)), constant_values=outside
    )  # (n, h+3, w+3)
    stride = w + 3
    base = (np.arange(n) * (h + 3) * stride)[:, None, None]
    i00 = base + (y0.astype(np.int64) + 1) * stride + (x0.astype(np.int64) + 1)
    flat = padded.reshape(-1)
    top = flat[i00] * (1 - fx) + flat[i00 + 1] * fx
    bottom = flat[i00 + stride] * (1 - fx) + flat[i00 + stride + 1] * fx
    return top * (1 - fy) + bottom * fy


def compose(alpha, surface, ink, light, noise_std, noise) -> np.ndarray:
    """A photo: ink over the surface, lit, plus sensor noise; uint8 (n, [T,] H, W, 3).

    alpha (n, [T,] H, W); surface and light (n, H, W, 3); ink (n, 3); noise_std (n,); noise like the output.
    Computed as 255 * light * (surface + alpha * (ink - surface)) + 255 * std * noise with the per-instance
    factors folded first, so that only a few full-size operations run.
    """
    extra = (slice(None),) + (None,) * (alpha.ndim - 3)  # broadcast per-instance arrays over frames
    lit = (255 * light * surface + 0.5).astype(np.float32)[
        extra
    ]  # (n, [1,] H, W, 3); +0.5 rounds on the cast
    step = (255 * light * (ink[:, None, None, :] - surface)).astype(np.float32)[extra]
    rgb = np.multiply(alpha[..., None], step)
    rgb += lit
    noise = np.multiply(noise, (255 * noise_std.astype(np.float32)).reshape((-1,) + (1,) * (noise.ndim - 1)))
    rgb += noise
    np.clip(rgb, 0, 255, out=rgb)
    return rgb.astype(np.uint8)
