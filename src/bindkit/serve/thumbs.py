"""Small previews for search results: images scaled, a video's first frame, depth and thermal as colour maps,
IMU channels and audio waveforms as little plots. Depth, thermal and IMU are drawn from what the model sees (the
loaders' output at the model's input size), so a preview shows exactly the embedded signal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

THUMB = 192  # longest side of image previews, in pixels
COLORMAPS = {"depth": "viridis", "thermal": "inferno"}


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def image_thumb(path: Path, size: int = THUMB) -> bytes:
    """An image scaled to fit `size` (upright by EXIF)."""
    with Image.open(path) as opened:
        img = ImageOps.exif_transpose(opened)
        img = img.convert("RGB") if img.mode not in ("RGB", "L") else img
        img.thumbnail((size, size))
        return _png(img)


def video_thumb(path: Path, size: int = THUMB) -> bytes:
    """The frame nearest the middle of a video (the first one if it cannot seek), scaled."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        middle = None
        if stream.duration and stream.time_base:
            middle = (stream.start_time or 0) + stream.duration // 2
            container.seek(
                middle, stream=stream
            )  # lands on the keyframe before; decode forward to the middle
        frame = None
        for frame in container.decode(stream):
            if middle is None or frame.pts is None or frame.pts >= middle:
                break
        if frame is None:
            raise ValueError("no decodable video frame")
        img = frame.to_image()
    img.thumbnail((size, size))
    return _png(img)


def colour_map(x: np.ndarray, cmap: str, size: int = THUMB) -> bytes:
    """A 2-D map coloured between its 2nd and 98th percentiles, scaled up to `size` with nearest neighbours."""
    import matplotlib

    lo, hi = np.percentile(x, [2, 98])
    z = np.clip((x - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    rgb = (matplotlib.colormaps[cmap](z)[..., :3] * 255).astype(np.uint8)  # (H, W, 3)
    img = Image.fromarray(rgb)
    scale = max(1, size // max(img.size))
    return _png(img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST))


def line_plot(series: np.ndarray, labels: list[str] | None, rate: float | None = None) -> bytes:
    """A small PNG plot of `series` (C, T) (no pyplot: a Figure on the Agg canvas is thread-safe)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.6, 1.6), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.04, 0.96, 0.92))
    t = np.arange(series.shape[1]) / (rate or 1.0)
    for i, s in enumerate(series):
        ax.plot(t, s, lw=0.8, label=labels[i] if labels else None)
    ax.set_xticks([])
    ax.set_yticks([])
    if labels:
        ax.legend(fontsize=5, ncol=len(labels), loc="upper center", frameon=False, handlelength=1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def audio_thumb(path: Path, points: int = 400) -> bytes:
    """The waveform's envelope (max |x| per bin) as a small plot."""
    from bindkit.data.audio import decode_audio

    wave, _ = decode_audio(path)
    x = wave.numpy().reshape(-1, wave.shape[-1])[0]  # first channel
    n = max(1, len(x) // points)
    env = np.abs(x[: n * (len(x) // n)]).reshape(-1, n).max(1)
    return line_plot(np.stack([env, -env]), None)


def model_view(kind: str, path: Path, model_config: Any) -> np.ndarray:
    """The loader's output for one file at the model's input size: maps (1, H, W) as (H, W), series (C, T)."""
    from bindkit.store.detect import encoder_of
    from bindkit.store.inputs import load_inputs

    res = load_inputs(kind, [path], model_config.encoders[encoder_of(kind)])
    if res.skipped:
        raise ValueError(res.skipped[0].reason)
    x = res.tensor[0].numpy()
    return x[0] if x.ndim == 3 and x.shape[0] == 1 else x


# Previews a `ModalitySpec.thumbnail` may name: (kind, path, model config) -> PNG bytes.
def picture(kind: str, path: Path, model_config: Any) -> bytes:
    """An image, scaled."""
    return image_thumb(path)


def first_frame(kind: str, path: Path, model_config: Any) -> bytes:
    """A video's middle frame, scaled."""
    return video_thumb(path)


def waveform(kind: str, path: Path, model_config: Any) -> bytes:
    """An audio file's envelope."""
    return audio_thumb(path)


def heat_map(kind: str, path: Path, model_config: Any) -> bytes:
    """A single-channel map as the model sees it, in the kind's colour map (viridis by default)."""
    return colour_map(model_view(kind, path, model_config), COLORMAPS.get(kind, "viridis"))


def imu_plot(kind: str, path: Path, model_config: Any) -> bytes:
    """The six IMU channels as the model sees them."""
    return line_plot(model_view(kind, path, model_config), ["ax", "ay", "az", "gx", "gy", "gz"])


def series_plot(kind: str, path: Path, model_config: Any) -> bytes:
    """Any (C, T) series as the model sees it."""
    return line_plot(model_view(kind, path, model_config), None)


def thumbnail(kind: str, path: Path, model_config: Any) -> bytes:
    """A PNG preview of one stored item by its kind's `ModalitySpec.thumbnail`; ValueError for kinds without one."""
    import bindkit.modalities as modalities

    ref = modalities.spec(kind).thumbnail
    if ref is None:
        raise ValueError(f"no preview for {kind} items")
    return modalities.resolve(ref)(kind, path, model_config)
