"""Ego4D IMU scenario classification: 5-s windows of single-scenario videos, each scored alone, video label.

`ego4d.json` lists videos with `has_imu` and `scenarios`; `imu/<video_uid>.csv` holds the series. Windows tile the
video's canonical duration without overlap. Which videos the paper tested on is not published; a `videos` list file
(one uid a line) restricts the set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from bindkit.evaluate.readers.base import (
    EvalDataset,
    Item,
    check_missing,
    find_one,
    need_columns,
    read_csv,
    read_text,
)


def read_ego4d(
    root: str | Path,
    window_s: float = 5.0,
    videos: str | Path | None = None,
    max_windows_per_video: int | None = None,
    missing: str = "skip",
) -> EvalDataset:
    """Ego4D IMU windows with the scenario of their (single-scenario) video as label."""
    root = Path(root)
    meta_path = find_one(root, "ego4d.json")
    meta = json.loads(read_text(meta_path))
    imu_dir = next(
        (d for d in (meta_path.parent / "imu", root / "imu", root / "v2" / "imu") if d.is_dir()), None
    )
    if imu_dir is None:
        raise FileNotFoundError(f"{root}: no imu/ folder next to {meta_path}")
    wanted = {ln.strip() for ln in read_text(Path(videos)).splitlines() if ln.strip()} if videos else None
    rows, lost, excluded = [], [], {}
    for v in meta.get("videos", []):
        uid = v.get("video_uid")
        if not v.get("has_imu") or (wanted is not None and uid not in wanted):
            continue
        scen = v.get("scenarios") or []
        if len(scen) != 1:
            key = "videos without exactly one scenario"
            excluded[key] = excluded.get(key, 0) + 1
            continue
        csv_path = imu_dir / f"{uid}.csv"
        if not csv_path.is_file():
            lost.append((str(csv_path), "IMU file not found"))
            continue
        dur = float((v.get("video_metadata") or {}).get("video_duration_sec") or 0.0)
        n = math.floor(dur / window_s + 1e-9)
        n = min(n, max_windows_per_video) if max_windows_per_video else n
        rows += [(csv_path, (k * window_s, (k + 1) * window_s), scen[0]) for k in range(n)]
        if n == 0:
            excluded["videos shorter than one window"] = excluded.get("videos shorter than one window", 0) + 1
    check_missing("ego4d", lost, missing)
    vocab = sorted({r[2] for r in rows})
    items = [Item(p, window=w) for p, w, _ in rows]
    labels = [vocab.index(s) for _, _, s in rows]
    prompts = [[s.replace("_", " ")] for s in vocab]
    return EvalDataset("ego4d", "imu", "classification", items, vocab, prompts, labels=labels, missing=lost,
                       excluded=excluded, root=root)  # fmt: skip


IMU_COLUMNS = (
    "accl_x",
    "accl_y",
    "accl_z",
    "gyro_x",
    "gyro_y",
    "gyro_z",
)  # accelerometer first, then gyroscope


def read_imu_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(times in s (T,), values (T, 6) in IMU_COLUMNS order) of an Ego4D IMU CSV on the canonical clock, sorted;
    rows without a canonical timestamp or with a missing value are dropped (interpolation bridges them)."""
    rows = read_csv(Path(path))
    need_columns(rows, ("canonical_timestamp_ms", *IMU_COLUMNS), Path(path))
    cols = ("canonical_timestamp_ms", *IMU_COLUMNS)
    table = np.array([[_num(r[c]) for c in cols] for r in rows], dtype=np.float64).reshape(-1, len(cols))
    table = table[np.isfinite(table).all(1)]
    table = table[np.argsort(table[:, 0], kind="stable")]
    return table[:, 0] / 1000.0, table[:, 1:]


def _num(s: str) -> float:
    return float(s) if s and s.upper() not in ("NULL", "NAN", "NONE") else np.nan


def imu_window(times: np.ndarray, values: np.ndarray, window: tuple[float, float], length: int) -> np.ndarray:
    """(6, length) series over [start, end) by linear interpolation at `length` evenly spaced instants."""
    start, end = window
    inside = (times >= start) & (times < end)
    if inside.sum() < 2:
        raise ValueError(f"window {start:.1f}-{end:.1f} s holds {int(inside.sum())} IMU samples")
    span = times[inside][-1] - times[inside][0]
    if span < 0.5 * (end - start):
        raise ValueError(f"window {start:.1f}-{end:.1f} s: IMU samples cover only {span:.2f} s")
    t = start + (np.arange(length) + 0.5) * (end - start) / length
    return np.stack([np.interp(t, times, values[:, c]) for c in range(values.shape[1])]).astype(np.float32)
