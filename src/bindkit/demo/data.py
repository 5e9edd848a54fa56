"""The demo's data: the digits world's train and held-out test splits as model inputs, with fitted normalisation.

Depth, thermal and IMU are normalised with statistics fitted on the train split; the constants (plus the audio clip
and IMU window options) go into the saved model's `preprocess`, so `bindkit.data` loaders, the store and the search
service turn the test split's files into the same inputs the demo evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bindkit.config import ImageBindConfig
from bindkit.data import depth as depth_data
from bindkit.data import imu as imu_data
from bindkit.data import thermal as thermal_data
from bindkit.worlds import DigitsWorld, Instances, to_model_inputs
from bindkit.worlds.inputs import video_tensor

TRAIN_MODALITIES = ("image", "audio", "depth", "thermal", "imu", "text")
TEST_MODALITIES = ("image", "video", "audio", "depth", "thermal", "imu", "text")
FITTERS = {"depth": depth_data.fit_normalization, "thermal": thermal_data.fit_normalization,
           "imu": imu_data.fit_normalization}  # fmt: skip


@dataclass
class DemoData:
    """Instances and model inputs ({modality: tensor}, `vision` for images) of the train and test splits."""

    world: DigitsWorld
    train: Instances
    test: Instances
    probe: Instances  # the first train instances, video rendered too (few-shot pool for video)
    train_inputs: dict[str, torch.Tensor]
    test_inputs: dict[str, torch.Tensor]
    probe_video: torch.Tensor
    preprocess: dict[str, dict]  # modality -> loader constants stored in the model's config


def input_shapes(config: ImageBindConfig) -> dict[str, tuple[int, ...]]:
    """Per-item input shapes of the six encoders, keyed as `to_model_inputs` expects."""
    return {m: config.encoders[m].input_shape for m in ("vision", "text", "audio", "depth", "thermal", "imu")}


def audio_options(world: DigitsWorld, config: ImageBindConfig) -> dict:
    """load_audio options giving one clip of `target_length` frames per world clip (the word may be anywhere)."""
    _, mel, frames = config.encoders["audio"].input_shape
    clip = ((frames - 1) * 10 + 25) / 1000
    if clip > world.audio_seconds + 1e-9:
        raise ValueError(
            f"audio input of {frames} frames needs {clip:.3f} s clips; the world's are {world.audio_seconds} s"
        )
    return {"clip_duration": clip, "clips_per_file": 1}


def build_data(config: ImageBindConfig, n_train: int, n_test: int, n_probe: int, seed: int = 0) -> DemoData:
    """Sample and render both splits (disjoint writers, voices and seeds), convert and normalise them."""
    world = DigitsWorld(seed=seed)
    train = world.sample("train", n_train, seed=seed, modalities=TRAIN_MODALITIES)
    test = world.sample("test", n_test, seed=seed, modalities=TEST_MODALITIES)
    probe = world.render(train.select(slice(0, min(n_probe, n_train))), ("video",))
    shapes, audio = input_shapes(config), audio_options(world, config)
    tr = to_model_inputs(train, shapes, audio_kwargs=audio)
    te = to_model_inputs(test, {**shapes, "video": shapes["vision"]}, audio_kwargs=audio)
    preprocess = {"audio": dict(audio), "imu": {"duration": world.window_seconds}}
    for m, fit in FITTERS.items():
        stats = fit(tr[m])
        preprocess[m] = {**preprocess.get(m, {}), **stats}
        tr[m], te[m] = normalize(tr[m], stats), normalize(te[m], stats)
    probe_video = video_tensor(probe.videos, shapes["vision"][-1])
    return DemoData(world, train, test, probe, tr, te, probe_video, preprocess)


def normalize(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """(x - mean) / std with scalar or per-channel (dim 1) statistics."""
    mean, std = (torch.as_tensor(stats[k], dtype=torch.float32) for k in ("mean", "std"))
    if mean.ndim:  # per channel: (C,) -> (1, C, 1, ...)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, std = mean.view(shape), std.view(shape)
    return (x - mean) / std


def labels(instances: Instances) -> np.ndarray:
    """The digit of every instance (the class label)."""
    return np.asarray(instances.digit, dtype=np.int64)
