"""IMU: accelerometer and gyroscope of a pen writing the instance's own path.

World frame: X right and Y up the page (the image's x and -y), Z up out of the surface; metres and seconds. The pen
tip follows the instance's dense path on the shared clock (Catmull-Rom between path points, minimum-jerk easing,
a 5 mm lift on pen-up moves), low-passed like a hand. The pen's axis starts at the writer's grip (elevation,
azimuth) and tilts as the tip runs ahead of the hand, which follows it with a causal lag: axis(t) ~ L*a0 + (hand(t) - hand(0)) - (tip(t) - tip(0)).
The sensor frame is R(t) = Rot(a0 -> axis(t)) @ R0 with R0 = Rz(azimuth) @ Ry(90 deg - elevation), so the body z
axis is the pen axis (tip to top).

Channels (6, T): accelerometer x, y, z (specific force R^T (a + g z), m/s^2), then gyroscope x, y, z (body rates,
rad/s, from the exact rotation between consecutive samples). Acceleration is the centred second difference of the
position with the end samples repeated, so integrating the noise-free signal (R_{k+1} = R_k exp(w_k dt),
p_{k+1} = 2 p_k - p_{k-1} + a_k dt^2) gives the path back. Sensor biases, bias random walks and white noise are
added on top, scaled by `noise` (0 gives the exact signal).
"""

import numpy as np

from .paths import progress

G = 9.81
PEN_LENGTH_M = 0.12
LIFT_M = 0.005


def catmull_rom(points: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Points (n, P, D) at fractional indices u (n, T) on a C1 Catmull-Rom spline: (n, T, D)."""
    p = points.shape[1]
    i = np.clip(np.floor(u).astype(int), 0, p - 2)
    s = np.clip(u - i, 0, 1)[..., None]

    def at(j):
        return np.take_along_axis(points, np.clip(j, 0, p - 1)[..., None], 1)

    p0, p1, p2, p3 = at(i - 1), at(i), at(i + 1), at(i + 2)
    return 0.5 * (
        2 * p1 + (p2 - p0) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2 + (3 * p1 - p0 - 3 * p2 + p3) * s**3
    )


def lowpass(x: np.ndarray, sigma_s: np.ndarray, rate: float) -> np.ndarray:
    """Gaussian low-pass along axis 1 of x (n, T, D), per-instance sigma in seconds, edges held (reflect pad)."""
    t = x.shape[1]
    padded = np.concatenate([x[:, ::-1], x, x[:, ::-1]], axis=1)  # (n, 3T, D)
    freq = np.fft.rfftfreq(3 * t, d=1.0 / rate)
    gain = np.exp(-0.5 * (2 * np.pi * freq[None, :] * sigma_s[:, None]) ** 2)  # (n, F)
    out = np.fft.irfft(np.fft.rfft(padded, axis=1) * gain[..., None], n=3 * t, axis=1)
    return out[:, t : 2 * t]


def causal_lowpass(x: np.ndarray, lag_s: np.ndarray, rate: float) -> np.ndarray:
    """Second-order causal smoothing (gamma kernel t e^(-2t/lag), mean delay `lag_s`) along axis 1 of x (n, T, D).

    The signal is taken to have held its first value before t = 0, so a still start stays still.
    """
    n, t, _ = x.shape
    tau = (lag_s / 2)[:, None]  # (n, 1); a gamma(2, tau) kernel has mean delay 2 tau
    j = np.arange(t)[None] / rate
    kernel = j * np.exp(-j / tau)
    kernel /= kernel.sum(1, keepdims=True)  # (n, T)
    padded = np.concatenate([np.repeat(x[:, :1], t, axis=1), x], axis=1)  # (n, 2T, D)
    size = 4 * t
    y = np.fft.irfft(
        np.fft.rfft(padded, size, axis=1) * np.fft.rfft(kernel, size, axis=1)[..., None], size, axis=1
    )
    return y[:, t : 2 * t]


def axis_angle_matrix(v: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of rotation vectors v (..., 3) (Rodrigues)."""
    angle = np.linalg.norm(v, axis=-1)[..., None, None]
    k = v / np.maximum(angle[..., 0], 1e-12)
    zero = np.zeros_like(k[..., 0])
    kx = np.stack([zero, -k[..., 2], k[..., 1], k[..., 2], zero, -k[..., 0], -k[..., 1], k[..., 0], zero], -1)
    kx = kx.reshape(v.shape[:-1] + (3, 3))
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * (kx @ kx)


def rotation_vector(r: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) of rotation matrices (..., 3, 3) (exact log map; angles below pi)."""
    w = (
        np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
        / 2
    )
    cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
    sin = np.linalg.norm(w, axis=-1)
    angle = np.arctan2(sin, cos)
    return w * np.where(sin > 1e-12, angle / np.maximum(sin, 1e-12), 1.0)[..., None]


def grip(elevation_deg: np.ndarray, azimuth_deg: np.ndarray) -> np.ndarray:
    """R0 (n, 3, 3) = Rz(azimuth) @ Ry(90 - elevation): body z along the pen axis, tip to top."""
    e, a = np.radians(elevation_deg), np.radians(azimuth_deg)
    ry = axis_angle_matrix(np.stack([np.zeros_like(e), np.pi / 2 - e, np.zeros_like(e)], -1))
    rz = axis_angle_matrix(np.stack([np.zeros_like(a), np.zeros_like(a), a], -1))
    return rz @ ry


def pen_tip(geom, metres_per_px: np.ndarray, times: np.ndarray) -> np.ndarray:
    """World positions (n, T, 3) of the pen tip at `times` (T,)."""
    u = progress(geom.knot_t, geom.knot_u, times)  # (n, T)
    xy = catmull_rom(geom.dense, u) * metres_per_px[:, None, None]
    i = np.clip(np.floor(u).astype(int), 0, geom.dense.shape[1] - 2)
    up = np.take_along_axis(geom.stroke, i, 1) != np.take_along_axis(geom.stroke, i + 1, 1)  # pen-up move
    z = np.where(up, LIFT_M * np.sin(np.pi * (u - i)) ** 2, 0.0)
    return np.stack([xy[..., 0], -xy[..., 1], z], -1)


def clean_imu(geom, metres_per_px, elevation, azimuth, hand_lag, length: int, rate: float) -> np.ndarray:
    """Noise-free IMU (n, 6, T) of the pen along the instance's path."""
    times = np.arange(length) / rate
    tip = lowpass(pen_tip(geom, metres_per_px, times), np.full(len(geom.dense), 0.008), rate)
    hand = causal_lowpass(tip, hand_lag, rate)
    r0 = grip(elevation, azimuth)
    a0 = r0[:, :, 2]  # (n, 3) initial pen axis
    axis = PEN_LENGTH_M * a0[:, None] + (hand - hand[:, :1]) - (tip - tip[:, :1])
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    turn = np.cross(a0[:, None], axis)
    angle = np.arctan2(np.linalg.norm(turn, axis=-1), (a0[:, None] * axis).sum(-1))
    turn = turn / np.maximum(np.linalg.norm(turn, axis=-1, keepdims=True), 1e-12) * angle[..., None]
    rot = axis_angle_matrix(turn) @ r0[:, None]  # (n, T, 3, 3) sensor frame in world
    padded = np.concatenate([tip[:, :1], tip, tip[:, -1:]], axis=1)
    acc = (padded[:, 2:] - 2 * padded[:, 1:-1] + padded[:, :-2]) * rate**2  # (n, T, 3)
    acc[..., 2] += G
    accel = np.einsum("ntji,ntj->nti", rot, acc)  # R^T (a + g z)
    step = np.swapaxes(rot[:, :-1], -1, -2) @ rot[:, 1:]
    gyro = rotation_vector(step) * rate  # (n, T-1, 3)
    gyro = np.concatenate([gyro, gyro[:, -1:]], axis=1)
    return np.concatenate([accel, gyro], -1).transpose(0, 2, 1)


def sensor_errors(rngs, length: int, rate: float, noise: float) -> np.ndarray:
    """Biases, bias random walks and white noise (n, 6, T) for accelerometer (m/s^2) and gyroscope (rad/s)."""
    scale = np.array([0.04, 0.04, 0.04, 0.006, 0.006, 0.006])[:, None]  # white noise std per channel
    out = []
    for r in rngs:
        level = r.uniform(0.5, 1.5)
        bias = r.normal(0, 1, (6, 1)) * np.array([0.08] * 3 + [0.01] * 3)[:, None]
        walk = (
            np.cumsum(r.standard_normal((6, length)), 1)
            / np.sqrt(rate)
            * np.array([0.02] * 3 + [0.003] * 3)[:, None]
        )
        out.append(noise * (bias + walk + level * scale * r.standard_normal((6, length))))
    return np.stack(out)
