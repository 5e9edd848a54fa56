"""Configs as plain dataclasses: one `EncoderConfig` per modality, gathered in an `ImageBindConfig`.

No torch import at load time (only `canonical` reads the modality table), so configs can be read, printed and saved
anywhere. The JSON form stored next to weights is `ImageBindConfig.to_dict()`; preprocessing constants (e.g. depth
normalisation) travel in `EncoderConfig.preprocess`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")  # the built-in encoders, official order

# What a config saved before the behaviour fields existed meant, by modality (the rest take the field defaults).
# `from_dict` fills absent fields from here and `to_dict` leaves out values equal to these, so old config.json files
# read the same and the store's table names (a hash of `to_dict`) do not change.
IMPLIED: dict[str, dict[str, Any]] = {
    "text": {"causal": True, "pool": "eot", "grid_rule": "sequence", "cls_token": False},
    "vision": {"grid_rule": "clip"},
    "imu": {"grid_rule": "window"},
}
BEHAVIOUR = ("causal", "pool", "grid_rule", "cls_token")


def canonical(modality: str) -> str:
    """Map a user-facing modality name (`image`, `video`, ...) to its encoder name (the modality table's)."""
    from bindkit.modalities import encoder_of  # imported here: the table's stems import this module

    return encoder_of(modality)


def _grid_sequence(c: EncoderConfig) -> tuple[int, ...]:
    """One token per position of a (context,) input (text)."""
    return (c.input_shape[0],)


def _grid_window(c: EncoderConfig) -> tuple[int, ...]:
    """One token per `kernel[0]` samples of a (channels, length) series (IMU)."""
    return (c.input_shape[1] // c.kernel[0],)


def _grid_patch(c: EncoderConfig) -> tuple[int, ...]:
    """Conv patches over the trailing `len(kernel)` input dims."""
    spatial = c.input_shape[-len(c.kernel) :]
    return tuple((s - k) // st + 1 for s, k, st in zip(spatial, c.kernel, c.stride, strict=True))


def _grid_clip(c: EncoderConfig) -> tuple[int, ...]:
    """3-D patches over a (T, H, W) clip of T = kernel[0] frames made from a (3, H, W) input (vision)."""
    spatial = (c.kernel[0], *c.input_shape[1:])
    return tuple((s - k) // st + 1 for s, k, st in zip(spatial, c.kernel, c.stride, strict=True))


GRID_RULES: dict[str, Callable[[EncoderConfig], tuple[int, ...]]] = {
    "sequence": _grid_sequence, "window": _grid_window, "patch": _grid_patch, "clip": _grid_clip,
}  # fmt: skip
POOLS = ("cls", "eot")  # the head reads the CLS token, or the first end-of-text token (the largest id)


@dataclass(frozen=True)
class EncoderConfig:
    """One modality's encoder: stem geometry, trunk size, head and output scale."""

    modality: str
    width: int  # trunk width D
    depth: int  # number of transformer blocks
    heads: int
    out_dim: int = 1024
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    bias_kv: bool = False  # one learned extra key/value token (audio, depth, thermal, imu)
    pre_ln: bool = False  # LayerNorm before the first block (vision only)
    head_dropout: float = 0.0  # dropout between token selection and projection (imu: 0.5)
    scale: float | None = None  # postprocessor logit scale; None = L2 normalisation only
    learnable_scale: bool = False
    # Stem geometry. `input_shape` is one item's shape without the batch (and clip) dims.
    input_shape: tuple[int, ...] = ()
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    vocab_size: int = 0  # text only
    preprocess: dict[str, Any] = field(default_factory=dict)
    # Behaviour (see IMPLIED for what each built-in modality uses).
    causal: bool = False  # causal self-attention (text)
    pool: str = "cls"  # token the head reads: "cls", or "eot" (the first end-of-text token, text)
    grid_rule: str = "patch"  # how `input_shape` becomes a token grid: a key of GRID_RULES
    cls_token: bool = True  # the stem prepends a CLS token

    def __post_init__(self) -> None:
        if self.grid_rule not in GRID_RULES:
            raise ValueError(
                f"{self.modality}: grid_rule must be one of {sorted(GRID_RULES)}, got {self.grid_rule!r}"
            )
        if self.pool not in POOLS:
            raise ValueError(f"{self.modality}: pool must be one of {POOLS}, got {self.pool!r}")
        if self.pool == "cls" and not self.cls_token:
            raise ValueError(f"{self.modality}: pool 'cls' needs cls_token=True")

    @property
    def grid(self) -> tuple[int, ...]:
        """Token grid the stem produces for `input_shape` (excluding any CLS token)."""
        return GRID_RULES[self.grid_rule](self)

    @property
    def num_tokens(self) -> int:
        """Sequence length L seen by the trunk (CLS included where the stem adds one)."""
        return math.prod(self.grid) + int(self.cls_token)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields; behaviour fields only where they differ from what the modality implies (IMPLIED)."""
        d = dataclasses.asdict(self)
        implied = {**_DEFAULTS, **IMPLIED.get(self.modality, {})}
        return {k: v for k, v in d.items() if k not in BEHAVIOUR or v != implied[k]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EncoderConfig:
        """Inverse of `to_dict`: absent behaviour fields take the values the modality implies."""
        implied = IMPLIED.get(str(d.get("modality", "")), {})
        return cls(**{**implied, **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}})

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


@dataclass(frozen=True)
class ImageBindConfig:
    """A whole model: a name and one `EncoderConfig` per modality, in the official order."""

    name: str
    encoders: dict[str, EncoderConfig]

    @property
    def out_dim(self) -> int:
        return next(iter(self.encoders.values())).out_dim

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    def select(self, modalities: list[str] | tuple[str, ...]) -> ImageBindConfig:
        """A config holding only the named modalities (in the official order)."""
        wanted = {canonical(m) for m in modalities}
        unknown = wanted - set(self.encoders)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; this config has {list(self.encoders)}")
        return dataclasses.replace(self, encoders={m: c for m, c in self.encoders.items() if m in wanted})

    def replace_encoder(self, modality: str, **changes: Any) -> ImageBindConfig:
        """A copy with one encoder's fields changed (e.g. `preprocess` after fitting constants)."""
        enc = dict(self.encoders)
        enc[modality] = dataclasses.replace(enc[modality], **changes)
        return dataclasses.replace(self, encoders=enc)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {"name": self.name, "encoders": {m: c.to_dict() for m, c in self.encoders.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageBindConfig:
        """Inverse of `to_dict`."""
        fields = {f.name for f in dataclasses.fields(EncoderConfig)}
        enc = {}
        for m, c in d["encoders"].items():
            extra = set(c) - fields
            if extra:
                raise ValueError(f"encoder {m!r}: unknown config fields {sorted(extra)}")
            enc[m] = EncoderConfig.from_dict(c)
        return cls(name=d["name"], encoders=enc)

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> ImageBindConfig:
        """Read a JSON config written by `save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_official_kwargs(cls, kw: dict[str, Any], name: str = "custom") -> ImageBindConfig:
        """Build from the official `ImageBindModel(**kwargs)` keyword arguments (missing ones take its defaults)."""
        unknown = set(kw) - set(OFFICIAL_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown official constructor arguments: {sorted(unknown)}")
        a = {**OFFICIAL_DEFAULTS, **kw}
        return cls(name=name, encoders=_official_encoders(a))


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EncoderConfig) if f.name in BEHAVIOUR}

# Defaults of the official `ImageBindModel.__init__` (reference §A.2).
OFFICIAL_DEFAULTS: dict[str, Any] = {
    "video_frames": 2, "kernel_size": (2, 14, 14), "audio_kernel_size": 16, "audio_stride": 10,
    "out_embed_dim": 768, "vision_embed_dim": 1024, "vision_num_blocks": 24, "vision_num_heads": 16,
    "audio_embed_dim": 768, "audio_num_blocks": 12, "audio_num_heads": 12, "audio_num_mel_bins": 128,
    "audio_target_len": 204, "audio_drop_path": 0.1, "text_embed_dim": 768, "text_num_blocks": 12,
    "text_num_heads": 12, "depth_embed_dim": 384, "depth_kernel_size": 16, "depth_num_blocks": 12,
    "depth_num_heads": 8, "depth_drop_path": 0.0, "thermal_embed_dim": 768, "thermal_kernel_size": 16,
    "thermal_num_blocks": 12, "thermal_num_heads": 12, "thermal_drop_path": 0.0, "imu_embed_dim": 512,
    "imu_kernel_size": 8, "imu_num_blocks": 6, "imu_num_heads": 8, "imu_drop_path": 0.7,
}  # fmt: skip


def _official_encoders(a: dict[str, Any]) -> dict[str, EncoderConfig]:
    out = a["out_embed_dim"]
    k = tuple(a["kernel_size"])
    dk, tk = a["depth_kernel_size"], a["thermal_kernel_size"]
    ak, ast = a["audio_kernel_size"], a["audio_stride"]
    return {
        "vision": EncoderConfig(
            "vision", a["vision_embed_dim"], a["vision_num_blocks"], a["vision_num_heads"], out, pre_ln=True,
            input_shape=(3, 224, 224), kernel=k, stride=k, grid_rule="clip"),
        "text": EncoderConfig(
            "text", a["text_embed_dim"], a["text_num_blocks"], a["text_num_heads"], out, scale=1 / 0.07,
            learnable_scale=True, input_shape=(77,), vocab_size=49408, causal=True, pool="eot", grid_rule="sequence",
            cls_token=False),
        "audio": EncoderConfig(
            "audio", a["audio_embed_dim"], a["audio_num_blocks"], a["audio_num_heads"], out,
            drop_path=a["audio_drop_path"], bias_kv=True, scale=20.0,
            input_shape=(1, a["audio_num_mel_bins"], a["audio_target_len"]), kernel=(ak, ak), stride=(ast, ast)),
        "depth": EncoderConfig(
            "depth", a["depth_embed_dim"], a["depth_num_blocks"], a["depth_num_heads"], out,
            drop_path=a["depth_drop_path"], bias_kv=True, scale=5.0, input_shape=(1, 224, 224),
            kernel=(dk, dk), stride=(dk, dk)),
        "thermal": EncoderConfig(
            "thermal", a["thermal_embed_dim"], a["thermal_num_blocks"], a["thermal_num_heads"], out,
            drop_path=a["thermal_drop_path"], bias_kv=True, scale=10.0, input_shape=(1, 224, 224),
            kernel=(tk, tk), stride=(tk, tk)),
        "imu": EncoderConfig(
            "imu", a["imu_embed_dim"], a["imu_num_blocks"], a["imu_num_heads"], out, drop_path=a["imu_drop_path"],
            bias_kv=True, head_dropout=0.5, scale=5.0, input_shape=(6, 2000), kernel=(a["imu_kernel_size"],),
            stride=(a["imu_kernel_size"],), grid_rule="window"),
    }  # fmt: skip
