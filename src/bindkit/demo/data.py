"""The demo's data: the digits world's train split as model inputs with fitted normalisation, and the rendered
held-out split and few-shot pool (scored from their files, see `files.py`).

Depth, thermal and IMU are normalised with statistics fitted on the train split; the constants (plus the audio clip,
IMU window and video clip options) go into the saved model's `preprocess`, so `bindkit.data` loaders, `bindkit eval`,
the store and the search service turn files into inputs the way the model was trained.

Audio is trained on what inference sees: the loader pads short files with silence in the waveform (`pad="centre"`,
a non-official `load_audio` mode stored in `preprocess`), and each binding instance gives two audio rows: its clip
as recorded and a copy through the waveform augmentation of `bindkit.train.audio_augment` (seeded per item): half
cut to the word at its natural length, some band-limited to 8 kHz, with extra noise or room, all at a random level;
both through `load_audio` as files are. The binding run pairs both rows with the instance's image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bindkit.config import ImageBindConfig
from bindkit.data import load_audio, normalization_fitters
from bindkit.train.audio_augment import WaveAug, augment_waves, vtlp_factors, warp_mel
from bindkit.worlds import DigitsWorld, Instances, to_model_inputs
from bindkit.worlds.inputs import audio_clip_options

TEST_MODALITIES = ("image", "video", "audio", "depth", "thermal", "imu", "text")
# A world video shows the digit being written, finished only in its last frames: through the frozen image encoder
# (full preset run) its four 2-frame clips score 13.7 / 43.3 / 80.2 / 91.7% zero-shot top-1, their average 79.3%
# against 91.3% for the photo. The demo embeds the last two clips (the video's last second): 89.5%.
VIDEO_TAIL_CLIPS = 2
AUDIO_PAD = "centre"  # load_audio's silence padding of short files (stored in the model's preprocess)
# The binding instances' audio views: the clip as recorded, then one augmented copy (scripts/audio_ablation.py, 600
# audio steps on 6,000 instances: the clean view alone 75.3% as recorded / 70.3% trimmed, the augmented alone
# 71.8 / 74.2, both 77.7 / 77.5 and better on every robustness row; docs/demo.md). The augmented view's log-mel
# rows are also warped in frequency by 0.75-1.33 (VTLP: 1,200 audio steps, seeds 0-2, +2.5 points as recorded on
# held-out voices, every robustness row up, length invariance unchanged; docs/demo.md, "Other vocal tracts").
AUDIO_VIEWS: tuple[WaveAug | None, ...] = (None, WaveAug(vtlp=1.0))


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
    engine_test: Instances | None = None  # the test instances spoken by the held-out engine (audio only)


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
    return {"clip_duration": clip, "clips_per_file": 1, "pad": AUDIO_PAD}


def train_audio(train: Instances, config: ImageBindConfig, audio: dict, seed: int,
                views: tuple[WaveAug | None, ...] = AUDIO_VIEWS) -> torch.Tensor:  # fmt: skip
    """The binding instances' audio inputs, one block of n rows per view (None: as recorded; else waveform-augmented,
    item i of view v seeded by (seed, 7919, i) for v = 1 and (seed, 7919, v, i) after), through `load_audio` with
    the demo's options, the path files take at inference: (len(views) * n, 1, 1, mel, frames), view-major."""
    if train.audio is None or train.audio_span is None:
        raise ValueError("train_audio needs instances with audio rendered")
    _, mel, frames = config.encoders["audio"].input_shape
    kw = audio_clip_options(train.audio.shape[1] / train.sample_rate, mel, frames) | audio
    out = []
    for v, aug in enumerate(views):
        if aug is None:
            waves = list(train.audio)
        else:
            seeds = np.array([[seed, 7919, i] if v <= 1 else [seed, 7919, v, i] for i in range(len(train))])
            waves = augment_waves(train.audio, train.audio_span, seeds, aug)
        x = load_audio([(torch.from_numpy(w), train.sample_rate) for w in waves], **kw)
        assert isinstance(x, torch.Tensor)  # errors="raise": a tensor or an exception
        if aug is not None and aug.vtlp > 0:
            x = warp_mel(x, torch.from_numpy(vtlp_factors(seeds, aug)), kw.get("sample_rate", 16000))
        out.append(x)
    return torch.cat(out)


def build_data(config: ImageBindConfig, n_anchor: int, n_train: int, n_test: int, n_probe: int, seed: int = 0,
               ) -> DemoData:  # fmt: skip
    """Sample and render both splits (disjoint writers, voices and seeds), convert and normalise them.

    The train split has `n_anchor` instances with image and caption; the first `n_train` also get every bound
    modality (their inputs are `train_inputs[m]`; audio holds one block of n_train rows per `AUDIO_VIEWS` entry),
    and the first `n_probe` a video."""
    if not 1 <= n_probe <= n_train <= n_anchor:
        raise ValueError(f"need 1 <= n_probe <= n_train <= n_anchor, got {n_probe}, {n_train}, {n_anchor}")
    world = DigitsWorld(seed=seed)
    anchor = world.sample("train", n_anchor, seed=seed, modalities=("image", "text"))
    train = world.render(anchor.select(slice(0, n_train)), ("audio", "depth", "thermal", "imu"))
    test = world.sample("test", n_test, seed=seed, modalities=TEST_MODALITIES)  # scored from its files
    probe = world.render(train.select(slice(0, n_probe)), ("video",))
    shapes, audio = input_shapes(config), audio_options(world, config)
    tr = to_model_inputs(anchor, {m: shapes[m] for m in ("vision", "text")})
    tr |= to_model_inputs(train, {m: shapes[m] for m in ("depth", "thermal", "imu")})
    tr["audio"] = train_audio(train, config, audio, seed)
    engine_test = world.render(world.revoice(test), ("audio",)) if world.engine_voice else None
    preprocess = {
        "audio": dict(audio),
        "imu": {"duration": world.window_seconds},
        "vision": video_options(world),
    }
    for m, fit in normalization_fitters().items():
        stats = fit(tr[m])
        preprocess[m] = {**preprocess.get(m, {}), **stats}
        tr[m] = normalize(tr[m], stats)
    return DemoData(world, anchor, train, test, probe, tr, preprocess, engine_test)


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
