"""Audio: log-mel spectrogram clips through the 2-D patch stem (overlapping patches, a fixed non-square grid)."""

from __future__ import annotations

from typing import Any

import torch

from bindkit.config import EncoderConfig
from bindkit.modalities.common import check_float, check_shape
from bindkit.modalities.patch2d import Patch2dStem
from bindkit.modalities.spec import ModalitySpec
from bindkit.modalities.vision import VIDEO_EXT

AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a")


class AudioStem(Patch2dStem):
    """`Patch2dStem` on exactly the configured (1, mel, frames): its grid (12x19) is not square, so never resized."""

    resizable = False

    def validate(self, x: torch.Tensor) -> None:
        """[B,1,mel,frames] or [B,S,1,mel,frames] with the configured sizes."""
        c = self.cfg
        ok = x.ndim in (4, 5) and tuple(x.shape[-3:]) == tuple(c.input_shape)
        shape = ",".join(map(str, c.input_shape))
        check_shape(x, c, f"[B,S,{shape}] or [B,{shape}]", ok)
        check_float(x, c)


def clip_sizes(enc: EncoderConfig) -> dict[str, Any]:
    """load_audio options: mel bins, frames, and clips of exactly `target_length` fbank frames (at most 2 s)."""
    # 25 ms window, 10 ms hop; a quarter sample (at 16 kHz) of margin: the loader floors duration x rate, and 1.055 s
    # is 16879.99... samples as a float.
    frames = enc.input_shape[-1]
    return {"num_mel_bins": enc.input_shape[-2], "target_length": frames,
            "clip_duration": min(2.0, 0.025 + 0.01 * (frames - 1) + 0.25 / 16000)}  # fmt: skip


AUDIO = ModalitySpec(
    # video containers too: load_audio decodes their sound tracks (detection picks audio there only by hint)
    name="audio", encoder="audio", stem=AudioStem, loader="bindkit.data.audio:load_audio", sizes=clip_sizes,
    extensions=AUDIO_EXT + VIDEO_EXT, hints=("audio", "sound", "sounds", "speech"),
    step_aug="bindkit.train.augment:mask_step", thumbnail="bindkit.serve.thumbs:waveform",
)  # fmt: skip
