"""Manifest rows for the layouts the paper trained on (reference: datasets.md), ready for `FilePairs`.

Each reader walks a dataset folder and returns one dict per pair, with absolute paths, the loader options the
layout needs (camera parameters, time windows) and a label where the layout has one. `write_manifest` stores them.

* `audioset_pairs`: a folder of video files; the frame and the audio track of one file at the same time form a pair.
* `sunrgbd_pairs`: SUN RGB-D sample folders (image + refined depth + intrinsics; scene label).
* `llvip_pairs`: LLVIP visible/infrared JPEGs matched by name.
* `ego4d_imu_pairs`: Ego4D IMU CSVs cut into windows, each paired with the video frame at the window's centre.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import bindkit.modalities as modalities

VIDEO_SUFFIXES = set(modalities.spec("video").extensions)
KINECT_BASELINE, OTHER_BASELINE = 0.075, 0.095  # metres: Kinect v1/v2; RealSense / Xtion (reference §B.5)


# ------------------------------------------------------------------------------------------------ AudioSet-style
def youtube_id(stem: str) -> str:
    """The YouTube id in a clip's file name: `Y<id>` (PANNs), `<id>_<start>` (VGGSound/AudioCaps) or `<id>`."""
    head, _, tail = stem.rpartition("_")
    if head and tail.isdigit():
        return head
    return stem[1:] if stem.startswith("Y") and len(stem) == 12 else stem


def read_audioset_segments(path: str | Path) -> dict[str, list[str]]:
    """`eval_segments.csv`-style file -> {YTID: [label mids]} (comment lines skipped, ', ' delimiters)."""
    text = "\n".join(line for line in Path(path).read_text().splitlines() if not line.startswith("#"))
    out = {}
    for row in csv.reader(io.StringIO(text), skipinitialspace=True):
        if len(row) >= 4:
            out[row[0]] = [m for m in row[3].split(",") if m]
    return out


def read_audioset_names(path: str | Path) -> dict[str, str]:
    """`class_labels_indices.csv` -> {mid: display name}."""
    with open(path, newline="") as f:
        return {r["mid"]: r["display_name"] for r in csv.DictReader(f)}


def video_duration(path: str | Path) -> float:
    """Duration in seconds of a media file's first video stream (PyAV)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
        if c.duration is not None:
            return c.duration / 1_000_000
        if s.average_rate is None:
            raise ValueError(f"{path}: the video stream gives neither a duration nor a frame rate")
        return s.frames / float(s.average_rate)


def clip_centres(duration: float, count: int, clip: float) -> list[float]:
    """`count` evenly spaced centres of `clip`-second windows inside [0, duration] (rounded to the millisecond)."""
    lo, hi = min(clip / 2, duration / 2), max(duration - clip / 2, duration / 2)
    if count == 1:
        return [round((lo + hi) / 2, 3)]
    return [round(lo + k * (hi - lo) / (count - 1), 3) for k in range(count)]


def audioset_pairs(root: str | Path, segments: str | Path | None = None, names: str | Path | None = None,
                   times_per_video: int = 4, clip_duration: float = 2.0) -> list[dict[str, Any]]:  # fmt: skip
    """(video frame, audio) rows for every video file under `root`, with `times_per_video` times each.

    The views of a row are its times: each epoch draws one, and the frame and the audio clip are taken there.
    `segments` (AudioSet csv) and `names` (class_labels_indices.csv) add multi-label `label` lists.
    """
    labels = read_audioset_segments(segments) if segments else {}
    display = read_audioset_names(names) if names else {}
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    rows = []
    for p in files:
        ytid = youtube_id(p.stem)
        row = {"video": str(p.resolve()), "audio": str(p.resolve()), "ytid": ytid,
               "times": clip_centres(video_duration(p), times_per_video, clip_duration)}  # fmt: skip
        if ytid in labels:
            row["label"] = [display.get(m, m) for m in labels[ytid]]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ SUN RGB-D
def _only_file(folder: Path) -> Path:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        raise ValueError(f"{folder}: expected exactly one file, found {len(files)}")
    return files[0]


def sunrgbd_pairs(root: str | Path, depth_folder: str = "depth_bfx",
                  samples: Iterable[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """(image, depth) rows for SUN RGB-D sample folders under `root` (`image/`, `depth_bfx/`, `intrinsics.txt`).

    Rows carry `focal_length` (fx from intrinsics.txt), the sensor's `baseline`, `encoding="sunrgbd"` (bit-rotated
    PNGs) and the `scene.txt` label. `samples` keeps only sample folders whose path ends with one of the given
    paths (e.g. the toolbox split with its `/n/fs/sun3d/data/` prefix removed).
    """
    from bindkit.data.depth import sunrgbd_focal

    keep = (
        None
        if samples is None
        else {s.strip("/").removeprefix("n/fs/sun3d/data/").strip("/") for s in samples}
    )
    rows = []
    for dirpath, dirnames, _ in sorted(os.walk(root)):
        d = Path(dirpath)
        if "image" not in dirnames or depth_folder not in dirnames or not (d / "intrinsics.txt").is_file():
            continue
        rel = d.relative_to(root).as_posix()
        if keep is not None and not any(rel.endswith(k) or k.endswith(rel) for k in keep):
            continue
        sensor = "kinect" if re.search(r"(^|/)kv[12](/|$)", rel) else "other"
        row = {"image": str(_only_file(d / "image").resolve()), "depth": str(_only_file(d / depth_folder).resolve()),
               "focal_length": sunrgbd_focal(d / "intrinsics.txt"), "encoding": "sunrgbd", "sample": rel,
               "baseline": KINECT_BASELINE if sensor == "kinect" else OTHER_BASELINE}  # fmt: skip
        if (d / "scene.txt").is_file():
            row["label"] = (d / "scene.txt").read_text().strip()
        rows.append(row)
    if not rows:
        raise FileNotFoundError(
            f"{root}: no SUN RGB-D sample folders (image/, {depth_folder}/, intrinsics.txt)"
        )
    return rows


# ------------------------------------------------------------------------------------------------ LLVIP
def llvip_pairs(root: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """(visible, infrared) rows of `LLVIP/{visible,infrared}/<split>/*.jpg` matched by stem; with the Pascal-VOC
    `Annotations/` folder present, `persons` holds the box count and `label` is person/background."""
    root = Path(root)
    vis = {p.stem: p for p in (root / "visible" / split).glob("*.jpg")}
    ir = {p.stem: p for p in (root / "infrared" / split).glob("*.jpg")}
    if not vis:
        raise FileNotFoundError(f"{root / 'visible' / split}: no .jpg files")
    unmatched = sorted(set(vis) ^ set(ir))
    if unmatched:
        raise ValueError(
            f"{root}: {len(unmatched)} image(s) without a visible/infrared partner: {unmatched[:20]}"
        )
    rows = []
    for stem in sorted(vis):
        row: dict[str, Any] = {"image": str(vis[stem].resolve()), "thermal": str(ir[stem].resolve())}
        xml = root / "Annotations" / f"{stem}.xml"
        if xml.is_file():
            n = sum(1 for o in ET.parse(xml).getroot().iter("object") if o.findtext("name") == "person")
            row.update(persons=n, label="person" if n else "background")
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------ Ego4D IMU
def imu_time_range(csv_path: str | Path) -> tuple[float, float]:
    """First and last `canonical_timestamp_ms` of an Ego4D IMU CSV, in seconds (empty cells skipped)."""
    lo, hi = float("inf"), float("-inf")
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            v = (r.get("canonical_timestamp_ms") or "").strip()
            if v and v.lower() not in ("nan", "null", "none"):
                t = float(v) / 1000
                lo, hi = min(lo, t), max(hi, t)
    if lo > hi:
        raise ValueError(f"{csv_path}: no canonical_timestamp_ms values")
    return lo, hi


def ego4d_imu_pairs(root: str | Path, window: float = 5.0, stride: float | None = None,
                    video_dir: str | Path | None = None, single_scenario: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """(video frame, IMU window) rows from an Ego4D download (`v2/ego4d.json`, `v2/imu/<uid>.csv`, videos in
    `v2/full_scale/<uid>.mp4` unless `video_dir`). Windows of `window` s every `stride` s (default: `window`) lie
    inside the CSV's canonical time range; the frame is taken at each window's centre. The label is the scenario;
    like the paper, only single-scenario videos are kept unless `single_scenario=False`."""
    root = Path(root)
    base = root / "v2" if (root / "v2").is_dir() else root
    meta = json.loads((base / "ego4d.json").read_text())
    vdir = Path(video_dir) if video_dir else base / "full_scale"
    stride = stride or window
    rows = []
    for v in meta.get("videos", []):
        scen = v.get("scenarios") or []
        if not v.get("has_imu") or (single_scenario and len(scen) != 1):
            continue
        path = base / "imu" / f"{v['video_uid']}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: listed with has_imu=true in ego4d.json but missing")
        lo, hi = imu_time_range(path)
        n = int((hi - lo - window) // stride) + 1 if hi - lo >= window else 0
        for k in range(n):
            t0 = round(lo + k * stride, 6)
            rows.append({"video": str((vdir / f"{v['video_uid']}.mp4").resolve()), "imu": str(path.resolve()),
                         "times": [round(t0 + window / 2, 6)], "start": t0, "duration": window,
                         "label": scen[0] if scen else None})  # fmt: skip
    return rows
