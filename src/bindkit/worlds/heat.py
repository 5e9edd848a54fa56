"""Thermal: the heat trace left by a warm finger writing the digit on a cooler surface.

The finger follows the instance's pen path (same clock). The writing interval is cut into `BINS` time bins; the
trace laid down in bin k (coverage drawn by its end minus coverage drawn by its start) has age
a_k = t_obs - (bin centre) when the camera looks at t_obs = end of writing + delay. Heat diffuses laterally, so each
bin's trace is blurred by a Gaussian of sigma_k^2 = sigma_0^2 + 2 D a_k (blurring conserves heat, so the peak drops
as it spreads) and cools as exp(-a_k / tau). Sensor: ambient gradient, low-frequency surface variation, column
fixed-pattern noise and white noise; output in [0, 1] (the camera's normalised range).
"""

import numpy as np

from .render import blur, ink_alpha
from .surfaces import unit_grid, value_noise

BINS = 4
# lateral heat diffusivity relative to paper (px^2/s scale factor): boards and wood conduct more than paper
DIFFUSIVITY = {"white paper": 1.0, "ruled paper": 1.0, "grid paper": 1.0, "yellow notepad": 1.0, "kraft paper": 0.9,
               "whiteboard": 1.6, "chalkboard": 1.4, "wood": 1.2}  # fmt: skip


def bin_edges(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """(n, BINS) times at which each bin's trace is complete (the last is just after the end of writing)."""
    frac = np.arange(1, BINS + 1) / BINS
    edges = start[:, None] + frac[None] * (end - start)[:, None]
    edges[:, -1] = end + 1e-6
    return edges


def thermal(d2_bins, start, end, half_width, surfaces, rngs, size: int) -> np.ndarray:
    """Thermal frames (n, size, size) float32 in [0, 1] from running-min distances at the bin edges (n, BINS, H, W)."""
    n = len(d2_bins)
    p = np.array([r.uniform(0, 1, 8) for r in rngs], np.float32)  # (n, 8) per-instance draws
    scale = size / 64.0
    delay = 0.1 + 1.4 * p[:, 0]
    width = half_width * (1.5 + 0.4 * p[:, 1])  # a finger is wider than a pen
    cover = ink_alpha(d2_bins, width, np.full(n, 1.2 * scale))  # (n, BINS, H, W) drawn by each edge
    fresh = np.diff(cover, axis=1, prepend=np.zeros_like(cover[:, :1])).clip(
        0, None
    )  # trace laid in each bin
    centre = start[:, None] + (np.arange(BINS) + 0.5)[None] / BINS * (end - start)[:, None]
    age = (end + delay)[:, None] - centre  # (n, BINS) seconds
    diff = np.array([DIFFUSIVITY[s] for s in surfaces])[:, None] * (0.6 + 0.8 * p[:, 2:3]) * scale**2
    sigma = np.sqrt((0.6 * scale) ** 2 + 2 * diff * age)
    tau = 3.0 + 5.0 * p[:, 3:4]
    contrast = 0.35 + 0.25 * p[:, 4:5]
    amp = contrast * np.exp(-age / tau)  # (n, BINS)
    trace = blur(fresh.reshape(-1, size, size), sigma.reshape(-1)).reshape(n, BINS, size, size)
    heat = (trace * amp[..., None, None].astype(np.float32)).sum(1)
    return (_background(rngs, p, size) + heat + _sensor_noise(rngs, p, size)).clip(0, 1).astype(np.float32)


def _background(rngs, p: np.ndarray, size: int) -> np.ndarray:
    """Ambient surface temperature: level, gradient and low-frequency variation (n, H, W)."""
    y, x = unit_grid(size, centred=True)
    ang = 2 * np.pi * p[:, 5, None, None]
    level = (0.18 + 0.2 * p[:, 6])[:, None, None]
    low = np.stack([value_noise(r, size, (3, 5)) for r in rngs])
    return level + 0.06 * (x * np.cos(ang) + y * np.sin(ang)) + 0.015 * low


def _sensor_noise(rngs, p: np.ndarray, size: int) -> np.ndarray:
    """White noise plus column fixed-pattern noise of a microbolometer (n, H, W)."""
    sigma = (0.006 + 0.012 * p[:, 7])[:, None, None]
    white = np.stack([r.standard_normal((size, size), np.float32) for r in rngs])
    cols = np.stack([r.standard_normal((1, size), np.float32) for r in rngs])
    return sigma * white + 0.004 * cols
