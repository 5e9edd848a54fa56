"""IMU series -> `[N, 6, length]` float32 (reference §B.6; the official code has no IMU loader).

Channel order: accelerometer x, y, z, then gyroscope x, y, z (`CHANNELS`). Values keep the units of the input (the
loader never rescales them; keep training and inference data in the same units, e.g. m/s^2 and rad/s). Each series
is resampled by linear interpolation onto `length` evenly spaced times covering `duration` seconds from `start`
(default: the first sample): 2000 samples over 5 s (400 Hz) for the official model. `duration=None` stretches the
whole recording onto `length` samples instead. A sample is taken to hold until the next one (one median interval
past the last sample); times outside the recording are filled with 0 (`pad="zero"`) or the nearest value
(`pad="edge"`). Rows with a missing time are dropped, the remaining times must increase strictly (an out-of-order or
repeated time is an error naming the sample), and NaN values are interpolated over per channel.

Inputs:
* CSV with a header: channel columns by name (`ax ay az gx gy gz`, `acc_x`/`accel_x`/`accl_x`..., `gyro_x`/`gyr_x`...,
  any case; Ego4D's `gyro_x..., accl_x...` works as is) and an optional time column: `t`, `time`, `timestamp`,
  `time_s` in seconds, or `*_ms` names in milliseconds (Ego4D: `canonical_timestamp_ms`). Other columns are ignored.
* CSV without a header: 6 columns (values; needs `sample_rate`) or 7 columns (time in seconds, then the 6 values).
* `.npy` / numpy arrays / tensors `[T, 6]` or `[6, T]` with `sample_rate` (`layout="tc"`/`"ct"` when T is 6);
  `.npz` with an `imu` array (or a single array) and optionally `t` (seconds).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from bindkit.data.common import as_list, normalize, read_bytes, running_mean_std
from bindkit.data.errors import ItemError, LoadResult, check_items, load_batch
from bindkit.data.limits import array_header, check_rows, check_values, load_array

CHANNELS = ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")
_PREFIXES = {"a": ("a", "acc", "accel", "accl", "accelerometer", "acceleration"),
             "g": ("g", "gyr", "gyro", "gyroscope")}  # fmt: skip
_TIME_S = ("t", "time", "timestamp", "time_s", "timestamp_s", "seconds")
_TIME_MS = ("canonical_timestamp_ms", "timestamp_ms", "time_ms", "t_ms", "component_timestamp_ms")


def _channel_names() -> dict[str, int]:
    names = {}
    for c, (kind, axis) in enumerate((k, a) for k in "ag" for a in "xyz"):
        for p in _PREFIXES[kind]:
            names.update({f"{p}{axis}": c, f"{p}_{axis}": c})
    return names


_NAMES = _channel_names()


def _parse_csv(text: str, time_column: str | None) -> tuple[np.ndarray | None, np.ndarray]:
    lines = text.lstrip().split("\n", 1)
    first = next(csv.reader([lines[0]]), [])
    try:
        [float(f) for f in first if f.strip()]
        header, body = None, text
    except ValueError:
        header, body = [h.strip().lower() for h in first], lines[1] if len(lines) > 1 else ""
    data = _numbers(body)
    if header is None:
        if data.shape[1] not in (6, 7):
            raise ItemError(
                f"a CSV without header needs 6 (values) or 7 (time + values) columns, got {data.shape[1]}"
            )
        return (data[:, 0], data[:, 1:]) if data.shape[1] == 7 else (None, data)
    return _by_name(header, data, time_column)


def _numbers(body: str) -> np.ndarray:
    """CSV rows -> `[rows, cols]` float64; empty cells become NaN (numpy's C parser first, csv on empty cells)."""
    if not body.strip():
        raise ItemError("CSV has no data rows")
    try:
        return np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError:
        pass
    rows = [r for r in csv.reader(io.StringIO(body)) if r and any(f.strip() for f in r)]
    try:
        return np.array([[float(f) if f.strip() else np.nan for f in r] for r in rows], dtype=np.float64)
    except ValueError as e:
        raise ItemError(f"CSV has a non-numeric or ragged row ({e})") from e


def _by_name(
    header: list[str], data: np.ndarray, time_column: str | None
) -> tuple[np.ndarray | None, np.ndarray]:
    if data.shape[1] != len(header):
        raise ItemError(f"CSV rows have {data.shape[1]} columns but the header names {len(header)}")
    cols: dict[int, int] = {}
    for j, h in enumerate(header):
        if h in _NAMES:
            cols.setdefault(_NAMES[h], j)
    missing = [CHANNELS[c] for c in range(6) if c not in cols]
    if missing:
        raise ItemError(
            f"CSV header {header} lacks channels {missing} (accepted e.g. ax/acc_x/accl_x, gx/gyro_x)"
        )
    values = np.take(data, [cols[c] for c in range(6)], axis=1)
    name: str | None = None
    if time_column is not None:
        if time_column.lower() not in header:
            raise ItemError(f"time column {time_column!r} not in the CSV header {header}")
        name = time_column.lower()
    else:
        name = next((h for h in (*_TIME_S, *_TIME_MS) if h in header), None)
    if name is None:
        return None, values
    t = data[:, header.index(name)]
    return (t / 1000.0 if name.endswith("_ms") else t), values


def _orient(a: np.ndarray, layout: str) -> np.ndarray:
    """`[T, 6]` float64 from `[T, 6]` or `[6, T]`."""
    if a.ndim != 2 or 6 not in a.shape:
        raise ItemError(f"IMU arrays must be [T, 6] or [6, T], got shape {tuple(a.shape)}")
    check_values(a, "IMU array")  # no complex/boolean data, and at least one finite value
    check_rows(max(a.shape))
    if layout == "auto":
        if a.shape == (6, 6):
            raise ItemError("a 6x6 array is ambiguous: pass layout='tc' ([T, 6]) or 'ct' ([6, T])")
        layout = "tc" if a.shape[1] == 6 else "ct"
    if (layout == "tc" and a.shape[1] != 6) or (layout == "ct" and a.shape[0] != 6):
        raise ItemError(f"layout {layout!r} does not fit shape {tuple(a.shape)}")
    return np.asarray(a if layout == "tc" else a.T, dtype=np.float64)


def read_imu(
    item: Any, layout: str = "auto", time_column: str | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """(times in seconds or None, values `[T, 6]` float64) from a CSV/.npy/.npz path or bytes, or an array."""
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray):
        return None, _orient(item, layout)
    data = read_bytes(item)
    if data.startswith((b"\x93NUMPY", b"PK\x03\x04")):
        return _read_numpy(data, layout)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ItemError("not a CSV text file or .npy/.npz array") from e
    check_rows(text.count("\n"))  # an upper bound on the data rows, before any parsing
    return _parse_csv(text, time_column)


def _read_numpy(data: bytes, layout: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(times or None, `[T, 6]` values) of a `.npy`, or of a `.npz` with `imu` (or one array) and optional `t`."""

    def pick(keys: list[str]) -> tuple[str, tuple[str, ...]]:
        arrays = [k for k in keys if k not in ("t", "time")]
        if "imu" not in keys and len(arrays) != 1:
            raise ItemError(f".npz needs an 'imu' array (and optionally 't'), found {keys}")
        key = "imu" if "imu" in keys else arrays[0]
        check_rows(max(array_header(data, key)[0], default=0))  # from the header, before loading
        return key, tuple(k for k in ("t", "time") if k in keys)[:1]

    if not data.startswith(b"PK"):
        check_rows(max(array_header(data)[0], default=0))
    values, extra = load_array(data, pick)
    t = next(iter(extra.values()), None)
    if t is not None:
        check_values(t, "IMU time stamps")
    return t, _orient(values, layout)


def _clean_series(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if np.isinf(t).any():  # NaN is a missing time (its row is dropped); infinity is garbage
        raise ItemError("time stamps must be finite, found an infinite one")
    keep = np.isfinite(t)
    t, x = t[keep], x[keep]
    back = np.flatnonzero(np.diff(t) <= 0)  # re-ordering or dropping rows would hide a broken recording
    if back.size:
        i = int(back[0]) + 1
        raise ItemError(f"time stamps must increase: sample {i} is at {t[i]:.6g} s after {t[i - 1]:.6g} s "
                        f"({back.size} such samples)")  # fmt: skip
    if len(t) < 2:
        raise ItemError(f"need at least 2 samples with distinct times, got {len(t)}")
    return t, x


def resample_imu(
    t: np.ndarray, x: np.ndarray, length: int = 2000, duration: float | None = 5.0, start: float | None = None,
    pad: str = "zero",
) -> np.ndarray:  # fmt: skip
    """Linear interpolation of `[T, 6]` samples at times `t` (seconds) onto `length` times -> `[6, length]`."""
    t, x = _clean_series(np.asarray(t, dtype=np.float64), np.asarray(x, dtype=np.float64))
    hold = float(np.median(np.diff(t)))  # the last sample covers one interval
    if duration is None:
        grid = np.linspace(t[0], t[-1], length)
    else:
        t0 = t[0] if start is None else start
        grid = t0 + np.arange(length) * (duration / length)
    if not (np.isfinite(t[-1] - t[0]) and np.isfinite(grid).all() and (np.diff(grid) > 0).all()):
        raise ItemError(
            f"time stamps from {t[0]:.6g} to {t[-1]:.6g} s cannot be resampled onto {length} increasing times "
            "(too large for float64 at this resolution); give times relative to the recording's start"
        )
    out = np.empty((6, length), dtype=np.float64)
    for c in range(6):
        ok = np.isfinite(x[:, c])
        if not ok.any():
            raise ItemError(f"channel {CHANNELS[c]} has no finite value")
        out[c] = np.interp(grid, t[ok], x[ok, c])
    if pad == "zero":
        out[:, (grid < t[0]) | (grid >= t[-1] + hold)] = 0.0
    elif pad != "edge":
        raise ValueError(f"pad must be 'zero' or 'edge', got {pad!r}")
    return out.astype(np.float32)


def load_imu(
    items: Sequence[Any],
    sample_rate: float | Sequence[float] | None = None,
    length: int = 2000,
    duration: float | None = 5.0,
    start: float | Sequence[float | None] | None = None,
    pad: str = "zero",
    layout: str = "auto",
    time_column: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    errors: str = "raise",
    num_workers: int = 0,
) -> torch.Tensor | LoadResult:
    """IMU files or arrays -> `[N, 6, length]` float32 (accel xyz, gyro xyz), optionally normalised per channel."""
    check_items(items, "imu")
    if pad not in ("zero", "edge") or layout not in ("auto", "tc", "ct"):
        raise ValueError(f"pad must be 'zero'/'edge' and layout 'auto'/'tc'/'ct', got {pad!r}, {layout!r}")
    rates, starts = as_list(sample_rate, len(items), "sample_rate"), as_list(start, len(items), "start")

    def one(i: int, item: Any) -> torch.Tensor:
        t, x = read_imu(item, layout, time_column)
        if t is None:
            if not rates[i] or rates[i] <= 0:
                raise ItemError("no time stamps in the input: pass sample_rate (Hz)")
            t = np.arange(len(x)) / float(rates[i])
        y = torch.from_numpy(resample_imu(t, x, length, duration, starts[i], pad))
        return normalize(y, mean, std)

    return load_batch(items, one, "imu", (6, length), errors, num_workers)


def fit_normalization(tensors: torch.Tensor | Iterable[torch.Tensor]) -> dict[str, list[float]]:
    """Per-channel mean and std of un-normalised `[N, 6, T]` batches, for the config's `preprocess` dict."""
    return running_mean_std(tensors, channel_dim=1)
