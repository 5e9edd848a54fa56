"""Images -> `[N, 3, S, S]` float32, as the official vision loader does it (reference §B.1).

Decode with Pillow and convert to RGB (alpha dropped without compositing, palettes expanded, grey replicated),
resize the short side to S with Pillow bicubic (the long side becomes `int(S * long / short)`), centre crop with
round-half-even offsets, scale to [0, 1] and normalise with the OpenAI CLIP mean/std. The one deliberate difference:
photos are turned upright from their EXIF orientation unless `exif_transpose=False` (the official behaviour).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from bindkit.data.common import center_crop_offsets, normalize, read_bytes, short_side_resize
from bindkit.data.errors import ItemError, LoadResult, load_batch
from bindkit.data.limits import check_resize, open_picture

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def open_image(item: Any, exif_transpose: bool = True) -> Image.Image:
    """A fully decoded PIL image from a path, bytes, file object, PIL image or uint8 array (mode unchanged)."""
    if isinstance(item, Image.Image):
        img = item
    elif isinstance(item, np.ndarray):
        return _from_array(item)
    else:
        try:
            img = open_picture(read_bytes(item))  # header checked against Limits.max_pixels first
            img.load()  # decode now: truncated or corrupt data must fail here, not later
        except ItemError:
            raise
        except Image.UnidentifiedImageError as e:
            raise ItemError("not a recognised image format") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise ItemError(f"corrupt or truncated image ({e})") from e
    if img.mode == "F" and not np.isfinite(np.asarray(img)).all():  # Pillow would turn NaN into some colour
        raise ItemError("float image contains NaN or infinite values")
    if exif_transpose:
        img = ImageOps.exif_transpose(img)
    return img


def _from_array(a: np.ndarray) -> Image.Image:
    if a.dtype != np.uint8:
        raise ItemError(
            f"image arrays must be uint8 (H, W) or (H, W, 1|3|4), got {a.dtype}; scale floats to 0-255"
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise ItemError(f"image arrays must be (H, W) or (H, W, 1|3|4), got shape {a.shape}")
    return Image.fromarray(np.ascontiguousarray(a))


def resize_center_crop(img: Image.Image, size: int, resample: int = Image.Resampling.BICUBIC) -> Image.Image:
    """Short side to `size` (Pillow resampling, antialiased), then the centred size x size crop."""
    check_resize(*img.size, size)
    w, h = short_side_resize(*img.size, size)
    img = img.resize((w, h), resample)
    left, top = center_crop_offsets(w, h, size)
    return img.crop((left, top, left + size, top + size))


def image_to_tensor(img: Image.Image, size: int = 224) -> torch.Tensor:
    """An RGB-convertible PIL image -> normalised `[3, size, size]` float32."""
    img = resize_center_crop(img.convert("RGB"), size)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
    return normalize(x.float().div(255), CLIP_MEAN, CLIP_STD)


def load_image(item: Any, size: int = 224, exif_transpose: bool = True) -> torch.Tensor:
    """One image (path, bytes, file object, PIL image or uint8 array) -> `[3, size, size]` float32."""
    return image_to_tensor(open_image(item, exif_transpose), size)


def load_images(
    items: Sequence[Any],
    size: int = 224,
    exif_transpose: bool = True,
    errors: str = "raise",
    num_workers: int = 0,
) -> torch.Tensor | LoadResult:
    """Images -> `[N, 3, size, size]` float32, CLIP-normalised; `errors="skip"` returns `LoadResult`."""
    return load_batch(
        items, lambda i, x: load_image(x, size, exif_transpose), "image", (3, size, size), errors, num_workers
    )
