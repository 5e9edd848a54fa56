"""Depth: the digit engraved in or embossed on a flat plate, seen by a depth camera from a random pose.

The relief height field lives on the plate in the same frontal frame as the image (same path). A pinhole camera
(50 degree field of view) looks at the plate, tilted about x and y and at a random distance; each pixel's ray hits
the plate, the height field is sampled there (bilinear), and the surface moves toward the camera by the relief
height. Output is disparity = BASELINE_M * FOCAL_PX / depth_m (the Kinect-style convention of the paper's depth
data, with NYU-like constants, so disparity does not depend on the output size), plus distance-dependent noise.
"""

import numpy as np

from .render import bilinear, ink_alpha
from .surfaces import value_noise

BASELINE_M = 0.075  # Kinect baseline
FOCAL_PX = 518.857901  # NYU Depth v2 (Kinect v1) fx, as in bindkit.data.depth; disparity = BASELINE_M * FOCAL_PX / depth
FOV_DEG = 50.0
RELIEFS = ["engraved", "embossed"]


def relief_profile(d2: np.ndarray, half_width: np.ndarray, engraved: np.ndarray, soft: float) -> np.ndarray:
    """Signed unit relief (n, H, W): a V groove (-) for engraved, a rounded ridge (+) for embossed."""
    cover = ink_alpha(d2, half_width, np.full(len(d2), soft))
    ridge = np.sqrt(cover * (2 - cover))  # rounded shoulder from a linear ramp
    return np.where(engraved[:, None, None], -cover, ridge)


def rotation(tilt_x: np.ndarray, tilt_y: np.ndarray) -> np.ndarray:
    """(n, 3, 3) plate orientation: Ry(tilt_y) @ Rx(tilt_x)."""
    cx, sx, cy, sy = np.cos(tilt_x), np.sin(tilt_x), np.cos(tilt_y), np.sin(tilt_y)
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    rx = np.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    return ry @ rx


def depth(d2_final, half_width, reliefs, rngs, size: int) -> np.ndarray:
    """Disparity maps (n, size, size) float32 of the relief plates."""
    p = np.array([r.uniform(0, 1, 6) for r in rngs])
    engraved = np.array([r == "engraved" for r in reliefs])
    width = half_width * (1.3 + 0.4 * p[:, 0])
    unit = relief_profile(d2_final, width, engraved, soft=1.5 * size / 64)
    z0 = (0.55 + 0.5 * p[:, 1]).astype(np.float32)  # metres to the plate centre
    tilt_x, tilt_y = np.radians(-30 + 60 * p[:, 2]), np.radians(-30 + 60 * p[:, 3])
    f = size / (2 * np.tan(np.radians(FOV_DEG) / 2))
    plate = z0 * size / f  # metres across the relief texture (matches the frame at zero tilt)
    height = plate * (0.05 + 0.04 * p[:, 4])  # relief depth/height in metres
    rot = rotation(tilt_x, tilt_y).astype(np.float32)
    g = ((np.arange(size) + 0.5 - size / 2) / f).astype(np.float32)
    normal, e1, e2 = rot[:, :, 2], rot[:, :, 0], rot[:, :, 1]  # (n, 3) plate normal and in-plane axes
    # ray (gx, gy, 1) hits the plate at distance s = n_z z0 / (n . ray); in-plane coords = axes . (hit - centre)
    s = (normal[:, 2] * z0)[:, None, None] / (
        normal[:, 0, None, None] * g[None, None, :]
        + normal[:, 1, None, None] * g[None, :, None]
        + normal[:, 2, None, None]
    )
    tu, tv = (_plane_coord(s, g, z0, e, plate, size) for e in (e1, e2))
    h = bilinear(unit, tu, tv, outside=0.0) * height[:, None, None].astype(np.float32)
    rough = np.stack([value_noise(r, size, (8, 16)) for r in rngs]) * np.float32(0.0008)
    z = s - (h + rough) * np.abs(normal[:, 2])[:, None, None]  # depth (m): the ray's z equals s
    noise = np.stack([r.standard_normal((size, size), np.float32) for r in rngs]) * (
        0.0012 + 0.0019 * (z - 0.4) ** 2
    )
    return (BASELINE_M * FOCAL_PX / (z + noise)).astype(np.float32)


def _plane_coord(s, g, z0, axis, plate, size: int) -> np.ndarray:
    """Texture pixel coordinate (n, H, W) along one in-plane axis of the ray hits s * (gx, gy, 1)."""
    along = s * (
        axis[:, 0, None, None] * g[None, None, :]
        + axis[:, 1, None, None] * g[None, :, None]
        + axis[:, 2, None, None]
    )
    along -= (axis[:, 2] * z0)[:, None, None]
    return along / plate[:, None, None].astype(np.float32) * size + size / 2
