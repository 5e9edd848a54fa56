"""Model inputs for the rows of a file manifest: one call per modality per batch, through `bindkit.data` loaders.

A row holds a path (or a caption, for text) per modality plus optional fields. Fields a loader names in its
signature (`focal_length`, `baseline`, `start`, `encoding`, ...) are passed to it, one value per item, so a manifest
can carry per-file camera parameters. Video sources are read at a time: the vision side of a row with `times` is the
frame at the chosen time (resized and centre-cropped like an image) and its audio side the clip centred there.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from bindkit.config import EncoderConfig
from bindkit.data import get_loader


def accepted(fn: Callable[..., Any]) -> set[str]:
    """Keyword names a loader takes."""
    return set(inspect.signature(fn).parameters) - {"items", "texts"}


def shape_options(cfg: EncoderConfig) -> dict[str, Any]:
    """Loader options that make its output fit the encoder's `input_shape` (plus the config's `preprocess`)."""
    from bindkit.data.dataset import loader_kwargs

    return loader_kwargs(cfg.modality, cfg)


def per_item(rows: Sequence[dict[str, Any]], names: set[str]) -> dict[str, Any]:
    """Row fields a loader accepts: a scalar when the batch agrees, else one value per item."""
    out: dict[str, Any] = {}
    for name in sorted(names):
        values = [r.get(name) for r in rows]
        if all(v is None for v in values):
            continue
        out[name] = values[0] if all(v == values[0] for v in values) else values
    return out


def load_side(cfg: EncoderConfig, items: list[Any], rows: Sequence[dict[str, Any]], times: list[float | None],
              options: dict[str, Any]) -> torch.Tensor:  # fmt: skip
    """A batch of one side's model inputs, (B, *input_shape) (audio from files: (B, clips, 1, mel, frames))."""
    m = cfg.modality
    if m == "vision" and any(t is not None for t in times):
        return frames_at(items, times, cfg.input_shape[-1])
    if m == "audio" and any(t is not None for t in times):
        items = [
            audio_at(p, t, shape_options(cfg)["clip_duration"]) for p, t in zip(items, times, strict=True)
        ]
        options = {**options, "clips_per_file": 1}
    fn = get_loader(m)  # vision: the image loader
    names = accepted(fn)
    kw = {k: v for k, v in {**shape_options(cfg), **options}.items() if k in names}
    kw.update(per_item(rows, names - {"errors", "num_workers", "size", "length"}))
    x = fn(items, **kw)
    if m == "audio" and x.shape[1] == 1:
        x = x[:, 0]  # one clip per item: (B, 1, mel, frames)
    return x


def frames_at(paths: list[Any], times: list[float | None], size: int) -> torch.Tensor:
    """The frame of each video nearest to its time (seconds), as normalised `[B, 3, size, size]` images."""
    from PIL import Image

    from bindkit.data.errors import ItemError, LoadError, Skipped, describe
    from bindkit.data.images import image_to_tensor
    from bindkit.data.video import decode_video

    out, bad = [], []
    for i, (p, t) in enumerate(zip(paths, times, strict=True)):
        try:
            frames, _, _ = decode_video(p, lambda n, fps, t=t: [min(n - 1, max(0, round((t or 0.0) * fps)))])
            out.append(image_to_tensor(Image.fromarray(next(iter(frames.values()))), size))
        except ItemError as e:
            bad.append(Skipped(i, describe(p), str(e)))
    if bad:
        raise LoadError("video frame", len(paths), bad)
    return torch.stack(out)


def audio_at(path: Any, t: float | None, duration: float) -> tuple[np.ndarray, int]:
    """The `duration`-second stretch of a file's audio centred on `t` (kept inside the file) as (waveform, rate)."""
    from bindkit.data.audio import decode_audio

    wave, rate = decode_audio(path)  # (C, N) float32
    n = int(round(duration * rate))
    start = int(round(((t or 0.0) - duration / 2) * rate))
    start = max(0, min(start, wave.shape[1] - n))
    return wave[:, start : start + n].numpy(), rate
