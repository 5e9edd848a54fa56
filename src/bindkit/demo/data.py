"""The demo's data: the digits world's train split as model inputs with fitted normalisation, and the rendered
held-out split and few-shot pool (scored from their files, see `files.py`).

Depth, thermal and IMU are normalised with statistics fitted on the train split; the constants (plus the audio clip,
IMU window and video clip options) go into the saved model's `preprocess`, so `bindkit.data` loaders, `bindkit eval`,
the store and the search service turn files into inputs the way the model was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bindkit.config import ImageBindConfig
from bindkit.data import normalization_fitters
from bindkit.worlds import DigitsWorld, Instances, to_model_inputs

TEST_MODALITIES = ("image", "video", "audio", "depth", "thermal", "imu", "text")
# A world video shows the digit being written, finished only in its last frames: through the frozen image encoder
# (full preset run) its four 2-frame clips score 13.7 / 43.3 / 80.2 / 91.7% zero-shot top-1, their average 79.3%
# against 91.3% for the photo. The demo embeds the last two clips (the video's last second): 89.5%.
VIDEO_TAIL_CLIPS = 2


@dataclass
class DemoData:
    """Instances of every split, the train split's model inputs ({modality: tensor}, `vision` for images) and the
    loader constants."""

    world: DigitsWorld
    anchor: Instances  # image + caption (the anchor's pairs)
    train: Instances  # the first of them with every modality (the binding pairs)
    test: Instances
    probe: Instances  # the first train instances, video rendered too (few-shot pool for video)
    train_inputs: dict[str, torch.Tensor]  # vision/text: every anchor instance; bound modalities: train only
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


def build_data(config: ImageBindConfig, n_anchor: int, n_train: int, n_test: int, n_probe: int, seed: int = 0,
               ) -> DemoData:  # fmt: skip
    """Sample and render both splits (disjoint writers, voices and seeds), convert and normalise them.

    The train split has `n_anchor` instances with image and caption; the first `n_train` also get every bound
    modality (their inputs are `train_inputs[m][:n_train]`), and the first `n_probe` a video."""
    if not 1 <= n_probe <= n_train <= n_anchor:
        raise ValueError(f"need 1 <= n_probe <= n_train <= n_anchor, got {n_probe}, {n_train}, {n_anchor}")
    world = DigitsWorld(seed=seed)
    anchor = world.sample("train", n_anchor, seed=seed, modalities=("image", "text"))
    train = world.render(anchor.select(slice(0, n_train)), ("audio", "depth", "thermal", "imu"))
    test = world.sample("test", n_test, seed=seed, modalities=TEST_MODALITIES)  # scored from its files
    probe = world.render(train.select(slice(0, n_probe)), ("video",))
    shapes, audio = input_shapes(config), audio_options(world, config)
    tr = to_model_inputs(anchor, {m: shapes[m] for m in ("vision", "text")})
    tr |= to_model_inputs(
        train, {m: shapes[m] for m in ("audio", "depth", "thermal", "imu")}, audio_kwargs=audio
    )
    preprocess = {"audio": dict(audio), "imu": {"duration": world.window_seconds}, "vision": video_options(world)}
    for m, fit in normalization_fitters().items():
        stats = fit(tr[m])
        preprocess[m] = {**preprocess.get(m, {}), **stats}
        tr[m] = normalize(tr[m], stats)
    return DemoData(world, anchor, train, test, probe, tr, preprocess)


def video_options(world: DigitsWorld, tail_clips: int = VIDEO_TAIL_CLIPS) -> dict:
    """load_videos options for the world's clips: 2-frame clips of consecutive frames, whole frame (no side crops),
    the last `tail_clips` of them only (`last_seconds`, a non-official loader option: see `VIDEO_TAIL_CLIPS`)."""
    pairs = max(1, world.video_frames // 2)
    clip = world.window_seconds / pairs
    tail = min(tail_clips, pairs)
    return {"clips": tail, "clip_duration": clip, "num_crops": 1, "last_seconds": clip * tail}


def normalize(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """(x - mean) / std with scalar or per-channel (dim 1) statistics."""
    mean, std = (torch.as_tensor(stats[k], dtype=torch.float32) for k in ("mean", "std"))
    if mean.ndim:  # per channel: (C,) -> (1, C, 1, ...)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean, std = mean.view(shape), std.view(shape)
    return (x - mean) / std
