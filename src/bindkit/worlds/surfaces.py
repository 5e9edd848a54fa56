"""Materials, inks and lights of the written-digit photos, as procedural textures (no image assets).

Every texture is built from seeded value noise (random grids upsampled by a smooth interpolation matrix), lines and
colour mixing, per instance, in float32 RGB in [0, 1].
"""

from functools import lru_cache

import numpy as np

SURFACES = ["white paper", "ruled paper", "grid paper", "yellow notepad", "kraft paper", "whiteboard", "chalkboard",
            "wood"]  # fmt: skip
INKS = {
    "black": (0.07, 0.07, 0.09), "blue": (0.08, 0.18, 0.62), "red": (0.72, 0.08, 0.08),
    "green": (0.07, 0.42, 0.18), "purple": (0.38, 0.13, 0.52),
    "white": (0.93, 0.93, 0.9), "yellow": (0.95, 0.84, 0.3), "pink": (0.96, 0.58, 0.7),
}  # fmt: skip
CHALK_INKS = ["white", "yellow", "pink"]  # the only inks on the chalkboard, and only there
PEN_INKS = ["black", "blue", "red", "green", "purple"]
# name: (brightness, RGB tint, linear gradient strength, radial falloff, sensor noise std)
LIGHTS = {
    "daylight": (1.0, (1.0, 1.0, 1.02), 0.12, 0.0, 0.012),
    "warm lamplight": (0.92, (1.1, 0.96, 0.76), 0.05, 0.45, 0.016),
    "dim light": (0.52, (1.0, 0.98, 0.95), 0.1, 0.1, 0.035),
    "bright sunlight": (1.12, (1.04, 1.02, 0.95), 0.22, 0.0, 0.009),
    "fluorescent light": (0.97, (0.93, 1.02, 1.06), 0.06, 0.05, 0.015),
}
LIGHT_NAMES = list(LIGHTS)
BASE = {
    "white paper": (0.93, 0.92, 0.88), "ruled paper": (0.94, 0.94, 0.91), "grid paper": (0.93, 0.94, 0.92),
    "yellow notepad": (0.97, 0.9, 0.55), "kraft paper": (0.64, 0.49, 0.33), "whiteboard": (0.92, 0.94, 0.95),
    "chalkboard": (0.12, 0.21, 0.17), "wood": (0.55, 0.37, 0.21),
}  # fmt: skip


def inks_for(surface: str) -> list[str]:
    """Inks that can be used on a surface (chalk only on the chalkboard; dark-enough pens on wood)."""
    if surface == "chalkboard":
        return CHALK_INKS
    return ["black", "blue", "white"] if surface == "wood" else PEN_INKS


@lru_cache(maxsize=32)
def interp_matrix(size: int, grid: int) -> np.ndarray:
    """(size, grid) smooth-step interpolation weights from grid nodes to pixel centres."""
    x = (np.arange(size) + 0.5) / size * (grid - 1)
    i0 = np.clip(np.floor(x).astype(int), 0, grid - 2)
    w = x - i0
    w = w * w * (3 - 2 * w)
    m = np.zeros((size, grid), np.float32)
    m[np.arange(size), i0] = 1 - w
    m[np.arange(size), i0 + 1] = w
    return m


@lru_cache(maxsize=8)
def unit_grid(size: int, centred: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x), each (size, size), in [0, 1] (or [-0.5, 0.5] when centred)."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size - (0.5 if centred else 0.0)
    y, x = np.meshgrid(g, g, indexing="ij")
    y.flags.writeable = x.flags.writeable = False
    return y, x


def value_noise(rng: np.random.Generator, size: int, grids: tuple[int, ...]) -> np.ndarray:
    """Fractal value noise (size, size), roughly zero mean and unit std; octave gains halve with frequency."""
    out = np.zeros((size, size), np.float32)
    for k, g in enumerate(grids):
        m = interp_matrix(size, g)
        out += 0.5**k * (m @ rng.standard_normal((g, g)).astype(np.float32) @ m.T)
    return out / np.sqrt(sum(0.25**k for k in range(len(grids))))


def lines(coord: np.ndarray, spacing: float, phase: float, width_px: float, size: int) -> np.ndarray:
    """Soft periodic lines along one coordinate in [0, 1] (intensity 0..1)."""
    d = np.abs(((coord - phase) / spacing + 0.5) % 1.0 - 0.5) * spacing * size  # pixels to nearest line
    return np.exp(-((d / width_px) ** 2))


def surface_texture(name: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """An instance of a material: RGB (size, size, 3) and a fine-grain field (size, size) used for chalk texture."""
    y, x = unit_grid(size)
    coarse = value_noise(rng, size, (3, 6))
    fine = value_noise(rng, size, (max(4, size // 4), max(8, size // 2)))
    base = np.asarray(BASE[name], np.float32) + rng.normal(0, 0.02, 3).astype(np.float32)
    rgb = base + (0.012 * coarse + 0.01 * fine)[..., None]
    lw = max(0.5, size / 110)  # line half width in pixels
    if name in ("ruled paper", "yellow notepad"):
        ruled = lines(y, rng.uniform(0.1, 0.16), rng.random(), lw, size)[..., None]
        rgb = rgb * (1 - 0.35 * ruled) + 0.35 * ruled * np.array([0.45, 0.6, 0.85], np.float32)
        if name == "ruled paper" and rng.random() < 0.6:
            margin = lines(x, 10.0, rng.uniform(0.06, 0.14), lw, size)[..., None]
            rgb = rgb * (1 - 0.5 * margin) + 0.5 * margin * np.array([0.85, 0.3, 0.3], np.float32)
    elif name == "grid paper":
        sp, ph = rng.uniform(0.07, 0.11), rng.random(2)
        grid = np.maximum(lines(y, sp, ph[0], lw, size), lines(x, sp, ph[1], lw, size))[..., None]
        rgb = rgb * (1 - 0.3 * grid) + 0.3 * grid * np.array([0.5, 0.7, 0.7], np.float32)
    elif name == "kraft paper":
        rgb = rgb + (0.03 * fine + 0.02 * coarse)[..., None]
    elif name == "whiteboard":
        cx, cy = rng.random(2)
        rgb = rgb + 0.05 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.08)[..., None]
    elif name == "chalkboard":
        rgb = rgb + (0.03 * np.clip(coarse, 0, None) + 0.012 * fine)[..., None]
    elif name == "wood":
        a = rng.uniform(-0.3, 0.3)
        grain = np.sin(2 * np.pi * (rng.uniform(5, 10) * (y * np.cos(a) + x * np.sin(a)) + 0.6 * coarse))
        rgb = rgb * (1 + 0.12 * grain + 0.04 * fine)[..., None]
    return np.clip(rgb, 0, 1).astype(np.float32), fine


def light_field(name: str, rng: np.random.Generator, size: int) -> tuple[np.ndarray, float]:
    """Illumination multiplier RGB (size, size, 3) and the sensor noise std of a lighting condition."""
    bright, tint, grad, radial, noise = LIGHTS[name]
    y, x = unit_grid(size, centred=True)
    a = rng.uniform(0, 2 * np.pi)
    field = 1 + grad * 2 * (x * np.cos(a) + y * np.sin(a))
    cx, cy = rng.uniform(-0.4, 0.4, 2)
    field = field * (1 - radial * ((x - cx) ** 2 + (y - cy) ** 2) * 2)
    field = field * bright * rng.uniform(0.92, 1.08)
    return (field[..., None] * np.asarray(tint, np.float32)).astype(np.float32), noise
