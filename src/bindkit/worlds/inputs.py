"""Turn a world's raw arrays into model inputs (torch tensors in ImageBind's layouts).

Vision follows the official image transform on already-square images: bicubic resize to the model's size and CLIP
mean/std normalisation. Video is cut into clips of two frames ([B, S, 3, 2, H, W]). Depth, thermal and IMU are passed
as raw values (the binding engine learns or stores their normalisation), resized or resampled to the model's shape.
Audio and text go through the public loaders of `bindkit.data` (`load_audio` with in-memory (waveform, rate)
tuples, `tokenize`), so the world and real files share one preprocessing path. Audio clips default to the length
that gives the model's frame count exactly, as many as cover the whole clip (official sampler spacing).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from bindkit.data import CLIP_MEAN, CLIP_STD, load_audio, tokenize

from .digits import Instances


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Bicubic (antialiased) resize of [N, C, H, W] to size x size; identity when already that size."""
    if size is None or (x.shape[-2] == size and x.shape[-1] == size):
        return x
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)


def image_tensor(images: np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, size, size], CLIP-normalised."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    x = _resize(x, size).clamp(0, 1)
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def video_tensor(videos: np.ndarray, size: int | None = None, clips: int | None = None) -> torch.Tensor:
    """uint8 [N, T, H, W, 3] -> float [N, S, 3, 2, size, size]: S clips (default T // 2), first+last frame each."""
    n, t = videos.shape[:2]
    clips = max(1, t // 2) if clips is None else clips
    if not 1 <= clips <= t:
        raise ValueError(f"video_tensor: clips must be in 1..{t} for {t} frames, got {clips}")
    edges = np.linspace(0, t, clips + 1)
    pick = np.stack([np.floor(edges[:-1]), np.ceil(edges[1:]) - 1], 1).astype(int)  # (S, 2) frame indices
    frames = image_tensor(videos[:, pick.reshape(-1)].reshape(-1, *videos.shape[2:]), size)
    return frames.view(n, clips, 2, 3, *frames.shape[-2:]).transpose(2, 3).contiguous()


def map_tensor(maps: np.ndarray, size: int | None = None) -> torch.Tensor:
    """float [N, H, W] (depth disparity or thermal) -> [N, 1, size, size], values unchanged except resizing."""
    return _resize(torch.from_numpy(np.ascontiguousarray(maps, np.float32))[:, None], size)


def imu_tensor(imu: np.ndarray, length: int | None = None) -> torch.Tensor:
    """float [N, 6, T] -> [N, 6, length], linearly resampled over the same time span when the length differs."""
    x = torch.from_numpy(np.ascontiguousarray(imu, np.float32))
    if length is None or length == x.shape[-1]:
        return x
    return F.interpolate(x, size=length, mode="linear", align_corners=True)


def audio_clip_options(seconds: float, num_mel_bins: int, target_length: int) -> dict:
    """load_audio options for clips of `target_length` frames (10 ms hop, 25 ms window) covering `seconds`."""
    clip = ((target_length - 1) * 10 + 25) / 1000  # seconds that make exactly target_length frames
    return {"num_mel_bins": num_mel_bins, "target_length": target_length, "clip_duration": clip,
            "clips_per_file": max(1, math.ceil(seconds / clip - 1e-6))}  # fmt: skip


def audio_tensor(audio: np.ndarray, sample_rate: int, **kwargs) -> torch.Tensor:
    """float [N, samples] -> bindkit.data.load_audio([(wave, sr), ...], **kwargs): [N, S, 1, mel, frames]."""
    x = load_audio([(torch.from_numpy(np.ascontiguousarray(w)), sample_rate) for w in audio], **kwargs)
    assert isinstance(x, torch.Tensor)  # errors="raise": a LoadResult only comes with errors="skip"
    return x


def text_tensor(texts: list[str], context_length: int = 77) -> torch.Tensor:
    """Captions -> bindkit.data.tokenize: int64 [N, context_length]."""
    return tokenize(list(texts), context_length=context_length)


def to_model_inputs(instances: Instances, shapes: dict[str, tuple[int, ...]], audio_kwargs: dict | None = None,
                    ) -> dict[str, torch.Tensor]:  # fmt: skip
    """Model inputs for each modality in `shapes` ({modality: per-item input shape}, e.g. from a config).

    Keys: vision (images), video, text, audio, depth, thermal, imu. Shapes: vision/video (3, H, W), depth/thermal
    (1, H, W), imu (6, N), text (L,), audio (1, mel, frames); `audio_kwargs` override load_audio options.
    """
    out = {}
    for m, shape in shapes.items():
        if m in ("vision", "image", "video", "depth", "thermal", "imu", "audio"):
            attr = {"vision": "images", "image": "images", "video": "videos"}.get(m, m)
            if getattr(instances, attr) is None:
                raise ValueError(
                    f"to_model_inputs: modality {m!r} was not rendered; use world.render(instances, ...)"
                )
        if m in ("vision", "image"):
            assert instances.images is not None  # checked above
            out[m] = image_tensor(instances.images, shape[-1])
        elif m == "video":
            assert instances.videos is not None
            out[m] = video_tensor(instances.videos, shape[-1])
        elif m in ("depth", "thermal"):
            out[m] = map_tensor(getattr(instances, m), shape[-1])
        elif m == "imu":
            assert instances.imu is not None
            out[m] = imu_tensor(instances.imu, shape[-1])
        elif m == "text":
            out[m] = text_tensor(instances.captions, context_length=shape[-1])
        elif m == "audio":
            assert instances.audio is not None
            kw = audio_clip_options(instances.audio.shape[1] / instances.sample_rate, shape[-2], shape[-1])
            out[m] = audio_tensor(instances.audio, instances.sample_rate, **{**kw, **(audio_kwargs or {})})
        else:
            raise ValueError(f"to_model_inputs: unknown modality {m!r}")
    return out
