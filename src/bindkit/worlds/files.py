"""Write instances as real files (the formats the loaders read) plus a JSONL manifest.

Layout under `folder`:
    manifest.jsonl          one line per instance: id, digit, label, split, caption, attributes, files {modality: path}
    world.json              shared facts: sample rate, video fps, IMU rate and channel order, depth units and constants
    image/<id>.png          8-bit RGB
    video/<id>.mp4          H.264 (yuv420p) at the world's fps
    audio/<id>.flac         16-bit mono at the world's sample rate
    depth/<id>.png          16-bit depth in millimetres (disparity = baseline_m * focal_px / metres)
    thermal/<id>.png        16-bit single channel, value = thermal * 65535
    imu/<id>.csv            Ego4D IMU columns: component_idx, component_timestamp_ms, canonical_timestamp_ms,
                            gyro_x, gyro_y, gyro_z (rad/s), accl_x, accl_y, accl_z (m/s^2)
"""

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from PIL import Image

from .digits import Instances
from .relief import BASELINE_M, FOCAL_PX

FILE_MODALITIES = {"image": "images", "video": "videos", "audio": "audio", "depth": "depth", "thermal": "thermal",
                   "imu": "imu"}  # fmt: skip
EXTENSIONS = {"image": "png", "video": "mp4", "audio": "flac", "depth": "png", "thermal": "png", "imu": "csv"}


def to_files(instances: Instances, folder: str | Path) -> Path:
    """Write every rendered modality of the instances under folder; returns the manifest path (appends if present)."""
    folder = Path(folder)
    present = [m for m, attr in FILE_MODALITIES.items() if getattr(instances, attr) is not None]
    if not present:
        raise ValueError(
            "to_files: the instances have no rendered modality; call world.render(instances, ...) first"
        )
    for m in present:
        (folder / m).mkdir(parents=True, exist_ok=True)
    _write_world(instances, folder)
    with open(folder / "manifest.jsonl", "a") as manifest:
        for i, uid in enumerate(instances.ids):
            files = {m: f"{m}/{uid}.{EXTENSIONS[m]}" for m in present}
            for m in present:
                WRITERS[m](getattr(instances, FILE_MODALITIES[m])[i], folder / files[m], instances)
            attrs = instances.attributes(i)
            row = {"id": uid, "digit": attrs.pop("digit"), "label": attrs.pop("label"), "split": instances.split,
                   "caption": attrs.pop("caption"), "attributes": attrs, "files": files}  # fmt: skip
            manifest.write(json.dumps(row) + "\n")
    return folder / "manifest.jsonl"


def _write_world(inst: Instances, folder: Path) -> None:
    meta = {
        "sample_rate": inst.sample_rate, "video_fps": inst.video_fps, "imu_rate_hz": inst.imu_rate,
        "imu_channels": ["accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"],
        "imu_units": {"accl": "m/s^2", "gyro": "rad/s"},
        "depth": {"units": "mm", "baseline_m": BASELINE_M, "focal_px": FOCAL_PX,
                  "disparity": "baseline_m * focal_px / depth_m"},
        "thermal": {"scale": 65535},
    }  # fmt: skip
    (folder / "world.json").write_text(json.dumps(meta, indent=1) + "\n")


def write_png(image: np.ndarray, path: Path, inst: Instances) -> None:
    """8-bit RGB PNG."""
    Image.fromarray(image, "RGB").save(path)


def write_mp4(frames: np.ndarray, path: Path, inst: Instances) -> None:
    """H.264 mp4 of uint8 frames (T, H, W, 3) at the instances' fps."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(inst.video_fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12"}
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())


def write_flac(wave: np.ndarray, path: Path, inst: Instances) -> None:
    """16-bit FLAC."""
    sf.write(path, wave, inst.sample_rate, subtype="PCM_16")


def write_depth_png(disparity: np.ndarray, path: Path, inst: Instances) -> None:
    """16-bit PNG of depth in millimetres."""
    mm = np.round(BASELINE_M * FOCAL_PX / disparity * 1000.0)
    Image.fromarray(np.clip(mm, 0, 65535).astype(np.uint16)).save(path)


def write_thermal_png(thermal: np.ndarray, path: Path, inst: Instances) -> None:
    """16-bit PNG, value = thermal * 65535."""
    Image.fromarray(np.round(thermal * 65535).astype(np.uint16)).save(path)


def write_imu_csv(imu: np.ndarray, path: Path, inst: Instances) -> None:
    """Ego4D-style IMU CSV (gyro columns before accl columns, as in Ego4D)."""
    ms = np.arange(imu.shape[1]) * 1000.0 / inst.imu_rate
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["component_idx", "component_timestamp_ms", "canonical_timestamp_ms", "gyro_x", "gyro_y",
                    "gyro_z", "accl_x", "accl_y", "accl_z"])  # fmt: skip
        for k in range(imu.shape[1]):
            w.writerow([0, f"{ms[k]:.4f}", f"{ms[k]:.4f}", *(f"{v:.7g}" for v in imu[3:, k]),
                        *(f"{v:.7g}" for v in imu[:3, k])])  # fmt: skip


WRITERS = {"image": write_png, "video": write_mp4, "audio": write_flac, "depth": write_depth_png,
           "thermal": write_thermal_png, "imu": write_imu_csv}  # fmt: skip
