"""Named model sizes. `get_config(name)` returns a fresh `ImageBindConfig`; tests iterate `list_configs()`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from bindkit.config import ImageBindConfig

_REGISTRY: dict[str, Callable[[], ImageBindConfig]] = {}


def register(name: str) -> Callable[[Callable[[], ImageBindConfig]], Callable[[], ImageBindConfig]]:
    """Decorator adding a config factory under `name`."""

    def deco(fn: Callable[[], ImageBindConfig]) -> Callable[[], ImageBindConfig]:
        if name in _REGISTRY:
            raise ValueError(f"config {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def get_config(name: str) -> ImageBindConfig:
    """The registered config called `name`."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown config {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]()


def list_configs() -> list[str]:
    """Names of all registered configs."""
    return sorted(_REGISTRY)


@register("imagebind_huge")
def imagebind_huge() -> ImageBindConfig:
    """The official 1.2B-parameter model (the only released checkpoint)."""
    kw = dict(
        vision_embed_dim=1280, vision_num_blocks=32, vision_num_heads=16,
        text_embed_dim=1024, text_num_blocks=24, text_num_heads=16,
        out_embed_dim=1024, audio_drop_path=0.1, imu_drop_path=0.7,
    )  # fmt: skip
    return ImageBindConfig.from_official_kwargs(kw, name="imagebind_huge")


@register("imagebind_test")
def imagebind_test() -> ImageBindConfig:
    """The small random-weight config of the official parity fixtures (3.7M parameters)."""
    kw = dict(
        video_frames=2, out_embed_dim=32, vision_embed_dim=64, vision_num_blocks=2, vision_num_heads=4,
        text_embed_dim=64, text_num_blocks=2, text_num_heads=4, audio_embed_dim=48, audio_num_blocks=2,
        audio_num_heads=4, depth_embed_dim=32, depth_num_blocks=2, depth_num_heads=4, thermal_embed_dim=48,
        thermal_num_blocks=2, thermal_num_heads=4, imu_embed_dim=32, imu_num_blocks=2, imu_num_heads=4,
    )  # fmt: skip
    return ImageBindConfig.from_official_kwargs(kw, name="imagebind_test")


@register("imagebind_small")
def imagebind_small() -> ImageBindConfig:
    """A ViT-S-sized model on the official input sizes, for CPU training and experiments (~120M parameters)."""
    kw = dict(
        out_embed_dim=512, vision_embed_dim=384, vision_num_blocks=12, vision_num_heads=6,
        text_embed_dim=384, text_num_blocks=12, text_num_heads=6, audio_embed_dim=384, audio_num_blocks=12,
        audio_num_heads=6, depth_embed_dim=384, depth_num_blocks=12, depth_num_heads=6, thermal_embed_dim=384,
        thermal_num_blocks=12, thermal_num_heads=6, imu_embed_dim=384, imu_num_blocks=6, imu_num_heads=6,
    )  # fmt: skip
    return ImageBindConfig.from_official_kwargs(kw, name="imagebind_small")


@register("imagebind_tiny")
def imagebind_tiny() -> ImageBindConfig:
    """A tiny model on small inputs (64-pixel images, 64 mel bins, 400-sample IMU) that trains in minutes on a CPU."""
    cfg = ImageBindConfig.from_official_kwargs(
        dict(
            out_embed_dim=128, vision_embed_dim=128, vision_num_blocks=4, vision_num_heads=4, kernel_size=(2, 8, 8),
            text_embed_dim=128, text_num_blocks=4, text_num_heads=4, audio_embed_dim=128, audio_num_blocks=4,
            audio_num_heads=4, audio_num_mel_bins=64, audio_target_len=104, depth_embed_dim=128,
            depth_kernel_size=8, depth_num_blocks=4, depth_num_heads=4, thermal_embed_dim=128,
            thermal_kernel_size=8, thermal_num_blocks=4, thermal_num_heads=4, imu_embed_dim=128,
            imu_num_blocks=4, imu_num_heads=4, audio_drop_path=0.0, imu_drop_path=0.0,
        ),
        name="imagebind_tiny",
    )  # fmt: skip
    enc = dict(cfg.encoders)
    for m in ("vision", "depth", "thermal"):
        enc[m] = dataclasses.replace(enc[m], input_shape=(enc[m].input_shape[0], 64, 64))
    enc["text"] = dataclasses.replace(enc["text"], input_shape=(32,))
    enc["imu"] = dataclasses.replace(enc["imu"], input_shape=(6, 400))
    return dataclasses.replace(cfg, encoders=enc)
