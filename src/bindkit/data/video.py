"""Videos -> `[N, clips * crops, 3, frames, S, S]` float32, as the official video loader (reference §B.4).

Per file: decode with PyAV; duration = frame count / average fps; `clips` clips of `clip_duration` s starting at
k * (duration - clip_duration) / (clips - 1), in exact rational arithmetic on the float64 `duration - clip_duration`;
a clip's frames are indices `ceil(fps * start)` up to `min(ceil(fps * end), frame count)` (float64 products); keep
`frames_per_clip` of them (`linspace(0, T-1).long()`: first and last for 2); divide by 255; bilinear short side to S
(`F.interpolate`, align_corners=False, long side `floor(long / short * S)`); CLIP mean/std; then 3 crops along the
long side at 0, ceil((long - S) / 2) and long - S. Output is clip-major: c0-crop0, c0-crop1, c0-crop2, c1-crop0, ...

The pieces (`clip_times`, `clip_frame_indices`, `scale_clips`, `spatial_crops`) are public so that each step can be
checked on its own against the official fixtures.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F

from bindkit.data.common import as_file
from bindkit.data.errors import ItemError, LoadResult, load_batch
from bindkit.data.images import CLIP_MEAN, CLIP_STD
from bindkit.data.limits import check_file, check_pixels, check_resize

SEEK_MIN_FRAMES = 300  # from this many frames on, kept frames are reached by seeking instead of decoding all
# FFmpeg demuxers that turn text, images or playlists of other files into a "video" (plus any *_pipe image reader)
REFUSED_DEMUXERS = {
    "tty",
    "bin",
    "xbin",
    "idf",
    "adf",
    "image2",
    "hls",
    "concat",
    "dash",
    "ffmetadata",
    "sdp",
}
REFUSED_CODECS = {"ansi", "bintext", "xbin", "idf"}  # text-mode art rendered as frames


def clip_times(duration: float, clips: int = 5, clip_duration: float = 2) -> list[tuple[Fraction, Fraction]]:
    """Exact (start, end) in seconds of `clips` evenly spaced clips (all `[0, clip_duration]` for short videos)."""
    max_start = Fraction(max(duration - clip_duration, 0))  # exact value of the float64 difference
    step = max_start / max(clips - 1, 1)
    length = Fraction(clip_duration)
    return [(step * k, step * k + length) for k in range(clips)]


def clip_frame_indices(
    n_frames: int, fps: float, start: Fraction, end: Fraction, frames_per_clip: int = 2
) -> list[int]:
    """Indices of the frames kept from one clip: `frames_per_clip` spread from its first to its last frame."""
    first, stop = math.ceil(fps * float(start)), min(math.ceil(fps * float(end)), n_frames)
    if stop <= first:
        raise ItemError(
            f"clip [{float(start):.3f}, {float(end):.3f}] s holds no frame ({n_frames} frames at {fps} fps)"
        )
    pick = torch.linspace(0, stop - first - 1, frames_per_clip).clamp(0, stop - first - 1).long()
    return [first + int(i) for i in pick]


def _open(item: Any) -> Any:
    """A path string for files (PyAV streams them from disk), else an in-memory stream."""
    if isinstance(item, (str, Path)):
        check_file(item)  # a regular, non-empty file: never a FIFO or device
        return str(item)
    return as_file(item)


def decode_video(
    item: Any, wanted: Any, seek: bool | None = None
) -> tuple[dict[int, np.ndarray], int, float]:
    """Decode only the frames `wanted(n_frames, fps)` asks for: ({index: HxWx3 uint8}, n_frames, fps).

    Frames are counted from the packets (as decord does). Long videos (`SEEK_MIN_FRAMES` or more, or `seek=True`)
    seek to each kept frame by its presentation time (decoding on from the keyframe before it); short ones are
    decoded in one pass. Both give the same frames (tested).
    """
    src = _open(item)
    try:
        n, fps, times = _probe(src)
        keep = set(wanted(n, fps))
        if times is not None and (seek or (seek is None and n >= SEEK_MIN_FRAMES)):
            try:
                return _decode_seeking(_rewind(src), keep, times), n, fps
            except _SeekFailed:
                pass
        frames, decoded = _decode_in_order(_rewind(src), keep)
    except ItemError:
        raise
    except Exception as e:  # PyAV/FFmpeg errors: corrupt container, unknown codec, truncated data
        raise ItemError(f"cannot decode video ({type(e).__name__}: {e})") from e
    if decoded == 0:
        raise ItemError("video has no decodable frames")
    if len(frames) < len(keep):
        raise ItemError(f"video is truncated: {n} frames are listed but only {decoded} decode")
    return frames, n, fps


class _SeekFailed(Exception):
    pass


def _rewind(src: Any) -> Any:
    if not isinstance(src, str):
        src.seek(0)
    return src


def _probe(src: Any) -> tuple[int, float, tuple[list[int], list[int]] | None]:
    """(frame count, average fps, sorted frame and keyframe presentation times or None), without decoding."""
    with av.open(src) as container:
        if not container.streams.video:
            raise ItemError("no video stream in the file (or an empty one)")
        stream = container.streams.video[0]
        _check_demuxer(container.format.name, stream)
        rate = stream.average_rate or stream.guessed_rate
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
        n = len(packets) or stream.frames
        if n == 0 or not rate:
            raise ItemError("video has no frames")
        _check_complete(src, container, stream, len(packets), float(rate))
    if not packets or any(t is None for t, _ in packets):
        return n, float(rate), None
    return n, float(rate), (sorted(t for t, _ in packets), sorted(t for t, k in packets if k))


def _check_demuxer(fmt: str, stream: Any) -> None:
    """A real video: not text shown as video (FFmpeg's tty/ANSI demuxers), an image, or a playlist of other files."""
    if fmt in REFUSED_DEMUXERS or fmt.endswith("_pipe") or stream.codec_context.name in REFUSED_CODECS:
        raise ItemError(f"not a video file (FFmpeg reads it with its {fmt!r} demuxer, "
                        f"codec {stream.codec_context.name!r})")  # fmt: skip
    w, h = stream.codec_context.width, stream.codec_context.height
    if not (w and h):
        raise ItemError("video stream has no frame size")
    check_pixels(w, h, "video frame")


def _check_complete(src: Any, container: Any, stream: Any, present: int, fps: float) -> None:
    """Refuse a video cut short: fewer frames than its header states (AVI/MP4 frame counts, Matroska durations)."""
    declared = stream.frames
    if (
        not declared and len(container.streams) == 1 and container.duration
    ):  # e.g. Matroska: a stated duration
        declared = round(container.duration / 1_000_000 * fps)
    if declared and present < declared - max(2, declared // 20):
        raise ItemError(
            f"video is truncated: its header states {declared} frames, only {present} are present"
        )
    if (
        container.format.name == "gif" and _last_byte(src) != b";"
    ):  # GIF has no count; its trailer is required
        raise ItemError("truncated GIF: the file ends without its trailer")


def _last_byte(src: Any) -> bytes:
    if isinstance(src, str):
        with open(src, "rb") as f:
            f.seek(-1, 2)
            return f.read(1)
    with src.getbuffer() as buf:
        return bytes(buf[-1:])


def _strict(stream: Any) -> Any:
    """The stream with FFmpeg's error concealment off: a corrupt or cut frame fails, as Pillow fails on such a JPEG."""
    stream.codec_context.options = {"err_detect": "explode"}
    return stream


def _decode_in_order(src: Any, keep: set[int]) -> tuple[dict[int, np.ndarray], int]:
    frames, decoded = {}, 0
    with av.open(src) as container:
        for frame in container.decode(_strict(container.streams.video[0])):
            if decoded in keep:
                check_pixels(frame.width, frame.height, "video frame")  # the size may change mid-stream
                frames[decoded] = frame.to_ndarray(format="rgb24")
            decoded += 1
            if len(frames) == len(keep):
                break
    return frames, decoded


def _decode_seeking(src: Any, keep: set[int], times: tuple[list[int], list[int]]) -> dict[int, np.ndarray]:
    """Each kept frame by its presentation time; seek only when a keyframe lies between it and the last one."""
    pts, keys = times
    frames, decoding, last = {}, None, None
    with av.open(src) as container:
        stream = _strict(container.streams.video[0])
        for index in sorted(keep):
            target, frame = pts[index], None
            if decoding is None or last is None or bisect_right(keys, target) > bisect_right(keys, last):
                container.seek(
                    target, backward=True, any_frame=False, stream=stream
                )  # to the keyframe before
                decoding = container.decode(stream)
            for frame in decoding:
                if frame.pts is None or frame.pts >= target:
                    break
            if frame is None or frame.pts != target:  # odd timestamps: decode in order instead
                raise _SeekFailed
            check_pixels(frame.width, frame.height, "video frame")
            frames[index], last = frame.to_ndarray(format="rgb24"), target
    return frames


def scale_clips(frames: torch.Tensor, size: int = 224) -> torch.Tensor:
    """`[S, 3, T, H, W]` 0-255 frames -> /255, bilinear short side to `size`, CLIP-normalised `[S, 3, T, H', W']`."""
    s, c, t, h, w = frames.shape
    new_h, new_w = (size, math.floor(w / h * size)) if h <= w else (math.floor(h / w * size), size)
    x = frames.float().div(255.0).reshape(s * c, t, h, w)  # each (clip, channel) plane scaled on its own
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False).reshape(
        s, c, t, new_h, new_w
    )
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype).reshape(1, 3, 1, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype).reshape(1, 3, 1, 1, 1)
    return (x - mean) / std


def crop_offsets(h: int, w: int, size: int = 224, num_crops: int = 3) -> list[tuple[int, int]]:
    """(y, x) of each crop: along the long side at 0, ceil((long - size) / 2), long - size (or the centre only)."""
    cy, cx = math.ceil((h - size) / 2), math.ceil((w - size) / 2)
    if num_crops == 1:
        return [(cy, cx)]
    if num_crops != 3:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    if h > w:
        return [(0, cx), (cy, cx), (h - size, cx)]
    return [(cy, 0), (cy, cx), (cy, w - size)]


def spatial_crops(scaled: torch.Tensor, size: int = 224, num_crops: int = 3) -> torch.Tensor:
    """`[S, 3, T, H', W']` -> `[S * num_crops, 3, T, size, size]`, clip-major."""
    offsets = crop_offsets(scaled.shape[-2], scaled.shape[-1], size, num_crops)
    crops = [scaled[..., y : y + size, x : x + size] for y, x in offsets]  # each (S, 3, T, size, size)
    return torch.stack(crops, dim=1).flatten(0, 1)


def _array_source(a: np.ndarray, fps: float | None) -> tuple[dict[int, np.ndarray], int, float]:
    if fps is None or fps <= 0:
        raise ItemError("a frame array needs a positive `fps`")
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[3] != 3 or a.shape[0] == 0:
        raise ItemError(f"frame arrays must be uint8 [T, H, W, 3] with T >= 1, got {a.dtype} {a.shape}")
    return dict(enumerate(a)), a.shape[0], float(fps)


def load_video(
    item: Any,
    clips: int = 5,
    clip_duration: float = 2,
    frames_per_clip: int = 2,
    size: int = 224,
    num_crops: int = 3,
    fps: float | None = None,
) -> torch.Tensor:
    """One video (path, bytes, file object, or uint8 `[T, H, W, 3]` array with `fps`) -> `[clips*crops, 3, T, S, S]`."""
    plan: list[list[int]] = []

    def wanted(n: int, rate: float) -> list[int]:
        times = clip_times(n / rate, clips, clip_duration)  # duration = frame count / average fps
        plan[:] = [clip_frame_indices(n, rate, s, e, frames_per_clip) for s, e in times]
        return [i for idx in plan for i in idx]

    if isinstance(item, np.ndarray):
        frames, n, rate = _array_source(item, fps)
        wanted(n, rate)
    else:
        frames, n, rate = decode_video(item, wanted)
    h, w = frames[plan[0][0]].shape[:2]
    check_resize(w, h, size)
    x = torch.from_numpy(np.stack([np.stack([frames[i] for i in idx]) for idx in plan]))  # (S, T, H, W, 3)
    return spatial_crops(scale_clips(x.permute(0, 4, 1, 2, 3), size), size, num_crops)


def load_videos(
    items: Sequence[Any],
    clips: int = 5,
    clip_duration: float = 2,
    frames_per_clip: int = 2,
    size: int = 224,
    num_crops: int = 3,
    fps: float | None = None,
    errors: str = "raise",
    num_workers: int = 0,
) -> torch.Tensor | LoadResult:
    """Videos -> `[N, clips*crops, 3, frames_per_clip, size, size]` float32 (official: `[N, 15, 3, 2, 224, 224]`)."""
    shape = (clips * num_crops, 3, frames_per_clip, size, size)

    def one(i: int, x: Any) -> torch.Tensor:
        return load_video(x, clips, clip_duration, frames_per_clip, size, num_crops, fps)

    return load_batch(items, one, "video", shape, errors, num_workers)
