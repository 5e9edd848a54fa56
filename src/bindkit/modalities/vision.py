"""Vision stem: images and 2-frame video clips through one temporally-inflated 3-D patch embedding."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from bindkit.config import EncoderConfig
from bindkit.modalities.common import ConfigStem, TokenPrefix, check_float, check_shape, square_size
from bindkit.modalities.spec import ModalitySpec

IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
VIDEO_EXT = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


class VisionStem(ConfigStem):
    """Conv3d(3 -> D, kernel = stride = (T, p, p), no bias), flatten (T', H', W'), CLS, positional embedding."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__(cfg)
        self.proj = nn.Conv3d(3, cfg.width, kernel_size=cast(tuple[int, int, int], cfg.kernel),  # config: (T, p, p)
                              stride=cast(tuple[int, int, int], cfg.stride), bias=False)  # fmt: skip
        self.prefix = TokenPrefix(cfg, resizable=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images or (N, 3, T, H, W) clips -> (N, L, D)."""
        if x.ndim == 4 or x.shape[2] == 1:
            # An image is the clip of its frame repeated T times, so the 3-D conv equals a 2-D conv with the kernel
            # summed over time: T times fewer FLOPs in the stem.
            img = x if x.ndim == 4 else x[:, :, 0]
            w = self.proj.weight.sum(2)  # (D, 3, p, p)
            y = F.conv2d(img, w, stride=self.cfg.stride[1:]).flatten(2)  # (N, D, H'W')
        else:
            y = self.proj(x).flatten(2)  # (N, D, T'H'W')
        return self.prefix(y.transpose(1, 2))

    def validate(self, x: torch.Tensor) -> None:
        """Check one batch (images 4-D, videos 6-D) before compute."""
        t = self.cfg.kernel[0]
        ok = (
            (x.ndim == 4 and x.shape[1] == 3)
            or (x.ndim == 5 and x.shape[2] == 3)
            or (x.ndim == 6 and x.shape[2] == 3 and x.shape[3] in (1, t))
        )
        check_shape(x, self.cfg, f"images [B,3,H,W], image sets [B,S,3,H,W] or videos [B,S,3,{t},H,W] "
                    "(a single video must be 6-D)", ok)  # fmt: skip
        check_float(x, self.cfg)


def video_sizes(enc: EncoderConfig) -> dict[str, Any]:
    """load_videos options: frame side and frames per clip (the temporal kernel)."""
    return {"size": enc.input_shape[-1], "frames_per_clip": enc.kernel[0] if enc.kernel else 2}


IMAGE = ModalitySpec(
    name="image", encoder="vision", stem=VisionStem, aliases=("vision",), loader="bindkit.data.images:load_images",
    sizes=square_size, extensions=IMAGE_EXT, hints=("image", "images", "img", "rgb", "photo", "photos", "visible"),
    sniff="bindkit.store.detect:is_picture", view="bindkit.train.augment:rgb_view",
    thumbnail="bindkit.serve.thumbs:picture",
)  # fmt: skip
VIDEO = ModalitySpec(
    name="video", encoder="vision", loader="bindkit.data.video:load_videos", sizes=video_sizes,
    extensions=VIDEO_EXT, hints=("video", "videos"), sniff="bindkit.store.detect:any_file",
    thumbnail="bindkit.serve.thumbs:first_frame",
)  # fmt: skip
