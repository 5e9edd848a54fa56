"""Official-checkpoint conversion (both ways) and bindkit's own format: safetensors weights plus config.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

import torch
from safetensors.torch import load_file, save_file

from bindkit.config import ImageBindConfig, canonical
from bindkit.model import ImageBind

if TYPE_CHECKING:
    from bindkit.runtime.backends import RuntimeModel

WEIGHTS, CONFIG = "model.safetensors", "config.json"
_STEM = {
    "vision": "rgbt_stem",
    "audio": "rgbt_stem",
    "thermal": "rgbt_stem",
    "depth": "depth_stem",
    "imu": "imu_stem",
}
_HEAD = {"norm": {"text": "proj.0"}, "proj": {"text": "proj.1", "imu": "3"}}  # default "0" / "2"
_BLOCK = {"norm1.weight": "norm_1.weight", "norm1.bias": "norm_1.bias",
          "norm2.weight": "norm_2.weight", "norm2.bias": "norm_2.bias"}  # fmt: skip


def bindkit_to_official(key: str) -> str:
    """Map one bindkit state-dict key to the official checkpoint's name."""
    _, m, part, rest = key.split(".", 3)
    pre, trk = f"modality_preprocessors.{m}", f"modality_trunks.{m}"
    if part == "trunk":
        if rest.startswith("pre_ln."):
            return f"{trk}.pre_transformer_layer.0.{rest[7:]}"
        _, i, tail = rest.split(".", 2)  # blocks.<i>.<tail>
        return f"{trk}.blocks.{i}.{_BLOCK.get(tail, tail)}"
    if part == "head":
        sub, p = rest.split(".", 1)
        return f"modality_heads.{m}.{_HEAD[sub].get(m, '0' if sub == 'norm' else '2')}.{p}"
    if part == "post":
        return f"modality_postprocessors.{m}.1.log_logit_scale"
    if m == "text" or rest in ("prefix.cls_token",) or (m == "imu" and rest == "prefix.pos_embed"):
        return f"{pre}.{rest.removeprefix('prefix.')}"
    if rest == "prefix.pos_embed":
        return f"{pre}.pos_embedding_helper.pos_embed"
    sub, p = rest.split(".", 1)  # proj.weight / norm.{weight,bias}
    if sub == "proj":
        return f"{pre}.{_STEM[m]}.proj.{'1.' if m == 'vision' else ''}{p}"
    return f"{pre}.{_STEM[m]}.norm_layer.{p}"


def text_mask(n: int) -> torch.Tensor:
    """The official causal mask buffer: -inf strictly above the diagonal, 0 elsewhere."""
    return torch.full((n, n), float("-inf")).triu(1)


_PRE_ORDER = [
    "pos_embed",
    "mask",
    "token_embedding",
    "cls_token",
    "rgbt_stem",
    "depth_stem",
    "imu_stem",
    "pos_embedding_helper",
]  # the official registration order inside each preprocessor
_GROUPS = ["modality_preprocessors", "modality_trunks", "modality_heads", "modality_postprocessors"]
_ORDER = ["vision", "text", "audio", "depth", "thermal", "imu"]


def _official_rank(key: str) -> tuple[int, int, int]:
    group, m, first = key.split(".")[:3]
    sub = _PRE_ORDER.index(first) if group == "modality_preprocessors" else 0
    if m == "imu" and first == "pos_embed":
        sub = -1  # the IMU preprocessor registers its positional embedding first
    return _GROUPS.index(group), _ORDER.index(m), sub


def to_official_state_dict(model: ImageBind) -> dict[str, torch.Tensor]:
    """bindkit weights under the official names and order (text mask re-derived), ready for `torch.save`."""
    out: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        out[bindkit_to_official(k)] = v
        if k == "encoders.text.stem.pos_embed":
            out["modality_preprocessors.text.mask"] = text_mask(v.shape[1]).to(v.dtype)
    return dict(sorted(out.items(), key=lambda kv: _official_rank(kv[0])))  # stable: block order kept


def official_key_map(config: ImageBindConfig) -> dict[str, str]:
    """{official key: bindkit key} for every tensor of `config` (the text mask maps to '')."""
    with torch.device("meta"):
        model = ImageBind(config)
    keys = {bindkit_to_official(k): k for k in model.state_dict()}
    if "text" in config.encoders:
        keys["modality_preprocessors.text.mask"] = ""
    return keys


def _check_keys(sd: dict[str, torch.Tensor], config: ImageBindConfig, kmap: dict[str, str]) -> None:
    """Strict check: every expected key present with its shape, nothing unknown. Raises naming the keys."""
    with torch.device("meta"):
        shapes = {bindkit_to_official(k): tuple(v.shape) for k, v in ImageBind(config).state_dict().items()}
    if "text" in config.encoders:
        n = config.encoders["text"].input_shape[0]
        shapes["modality_preprocessors.text.mask"] = (n, n)
    loaded = {k for k in sd if _modality_of(k) in config.encoders}
    missing = sorted(set(kmap) - loaded)
    unexpected = sorted(k for k in sd if k not in kmap and (_modality_of(k) in config.encoders or
                                                             _modality_of(k) not in _ORDER))  # fmt: skip
    wrong = sorted(f"{k}: checkpoint {tuple(sd[k].shape)} vs model {shapes[k]}"
                   for k in loaded & set(kmap) if tuple(sd[k].shape) != shapes[k])  # fmt: skip
    problems = [
        f"{name} ({len(v)}): {v[:20]}"
        for name, v in [
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", wrong),
        ]
        if v
    ]
    if problems:
        raise ValueError(f"checkpoint does not fit config {config.name!r}: " + "; ".join(problems))


def _modality_of(official_key: str) -> str:
    parts = official_key.split(".")
    return parts[1] if len(parts) > 1 else ""


def from_official_state_dict(sd: dict[str, torch.Tensor], config: ImageBindConfig) -> dict[str, torch.Tensor]:
    """Official state dict -> bindkit state dict for the modalities in `config`; strict on keys and shapes."""
    kmap = official_key_map(config)
    _check_keys(sd, config, kmap)
    if "text" in config.encoders:
        mask = sd["modality_preprocessors.text.mask"]
        if not torch.equal(mask, text_mask(mask.shape[0]).to(mask.dtype)):
            raise ValueError("modality_preprocessors.text.mask is not the causal mask bindkit derives")
    return {b: sd[o] for o, b in kmap.items() if b}


def load_official_checkpoint(
    path: str | Path,
    config: ImageBindConfig | None = None,
    modalities: list[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> ImageBind:
    """Load an official-format `.pth` (memory-mapped) into a bindkit model in eval mode.

    `config=None` means `imagebind_huge`; `modalities` loads only those encoders, so unused weights are never read.
    """  # fmt: skip
    from bindkit.registry import get_config

    config = config or get_config("imagebind_huge")
    if modalities:
        config = config.select([canonical(m) for m in modalities])
    sd = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    return _materialise(config, from_official_state_dict(sd, config), device, dtype)


def _materialise(
    config: ImageBindConfig,
    sd: dict[str, torch.Tensor],
    device: str | torch.device,
    dtype: torch.dtype | None,
) -> ImageBind:
    with torch.device("meta"):
        model = ImageBind(config)
    model.load_state_dict(sd, strict=True, assign=True)
    return model.to(device=device, dtype=dtype).eval()


def save_official_checkpoint(model: ImageBind, path: str | Path) -> None:
    """Write the model in the official format (a `torch.save`d state dict)."""
    torch.save(to_official_state_dict(model), path)


def save_model(model: ImageBind, folder: str | Path) -> Path:
    """bindkit's format: `model.safetensors` plus `config.json` (with preprocessing constants) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, folder / WEIGHTS, metadata={"format": "bindkit", "config": model.config.name})
    (folder / CONFIG).write_text(json.dumps({"bindkit_format": 1, **model.config.to_dict()}, indent=1))
    return folder


@overload
def load_model(folder: str | Path, modalities: list[str] | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype | None = None, backend: Literal["torch"] = "torch",
               precision: str | None = None) -> ImageBind: ...  # fmt: skip
@overload
def load_model(folder: str | Path, modalities: list[str] | None = None, device: str | torch.device = "cpu",
               dtype: torch.dtype | None = None, *, backend: str, precision: str | None = None,
               ) -> ImageBind | RuntimeModel: ...  # fmt: skip


def load_model(
    folder: str | Path,
    modalities: list[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    backend: str = "torch",
    precision: str | None = None,
) -> ImageBind | RuntimeModel:
    """Load a folder written by `save_model` (optionally only some modalities) in eval mode.

    `backend="openvino"` or `"onnxruntime"` returns the exported encoders behind the same `encode`, `forward` and
    `scale` (`bindkit.runtime.backends`): a `bindkit export` folder, or this model folder compiled once into the
    user cache. `precision` (fp32, bf16, int8) picks the exported precision; default: from `dtype`, else fp32.
    """
    folder = Path(folder)
    if backend != "torch":
        from bindkit.runtime.backends import load_runtime_model

        precision = precision or ("bf16" if dtype == torch.bfloat16 else "fp32")
        return load_runtime_model(folder, backend, modalities, precision=precision)
    if (folder / "manifest.json").is_file():
        raise ValueError(f"{folder} is an exported model; load it with backend='openvino' or 'onnxruntime'")
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise FileNotFoundError(f"{folder} is not a bindkit model folder (needs {WEIGHTS} and {CONFIG})")
    raw = json.loads((folder / CONFIG).read_text())
    raw.pop("bindkit_format", None)
    config = ImageBindConfig.from_dict(raw)
    if modalities:
        config = config.select(modalities)
    sd = load_file(folder / WEIGHTS)
    keep = {k: v for k, v in sd.items() if k.split(".")[1] in config.encoders}
    return _materialise(config, keep, device, dtype)
