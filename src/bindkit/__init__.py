"""bindkit: ImageBind, complete. One embedding space for images/video, text, audio, depth, thermal and IMU."""

from bindkit.checkpoint import (
    load_model,
    load_official_checkpoint,
    save_model,
    save_official_checkpoint,
)
from bindkit.config import MODALITIES, EncoderConfig, ImageBindConfig
from bindkit.hub import load_pretrained
from bindkit.model import Encoder, ImageBind
from bindkit.registry import get_config, list_configs
from bindkit.resolve import load
from bindkit.version import __version__ as __version__

__all__ = [
    "MODALITIES", "Encoder", "EncoderConfig", "ImageBind", "ImageBindConfig", "get_config", "list_configs",
    "load", "load_model", "load_official_checkpoint", "load_pretrained", "save_model", "save_official_checkpoint",
]  # fmt: skip
