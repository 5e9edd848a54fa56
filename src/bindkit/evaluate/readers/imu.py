"""Ego4D IMU scenario classification: 5-s windows of single-scenario videos, each scored alone, video label.

`ego4d.json` lists videos with `has_imu` and `scenarios`; `imu/<video_uid>.csv` holds the series. Windows tile the
video's canonical duration without overlap. Which videos the paper tested on is not published; a `videos` list file
(one uid a line) restricts the set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bindkit.evaluate.readers.base import EvalDataset, Item, check_missing, find_one, read_text


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
    rows, lost, excluded = [], [], dict[str, int]()
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
    index = {s: i for i, s in enumerate(vocab)}
    labels = [index[s] for _, _, s in rows]
    prompts = [[s.replace("_", " ")] for s in vocab]
    return EvalDataset("ego4d", "imu", "classification", items, vocab, prompts, labels=labels, missing=lost,
                       excluded=excluded, root=root)  # fmt: skip
