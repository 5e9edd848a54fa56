"""LoRA adapters on attention projections, attached from outside the model with torch parametrizations.

An adapted weight reads W + (alpha / rank) * B @ A, with A (rank, in) Kaiming-initialised and B (out, rank) zero, so
training starts from the base model. `merge_lora` writes that very sum into W (the same expression the forward
evaluates), so a merged model gives bit-identical outputs. Adapters save on their own (`save_lora`, safetensors,
keys `<weight path>.lora_A/.lora_B`, rank and alpha in the metadata) and re-attach with `load_lora`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import parametrize

from bindkit.model import ImageBind

FORMAT = "bindkit-lora"


class LoRADelta(nn.Module):
    """Parametrization W -> W + scale * B @ A for a (out, in) weight."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float):
        super().__init__()
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        return W + self.scale * (self.B @ self.A).to(W.dtype)


def targets(model: ImageBind, modalities: Iterable[str], modules: Iterable[str],
            blocks: Iterable[int] | None = None) -> Iterator[tuple[str, nn.Module, str]]:  # fmt: skip
    """(weight path, owning module, tensor name) of the attention projections to adapt."""
    modules, keep = set(modules), None if blocks is None else set(blocks)
    for m in modalities:
        for i, blk in enumerate(model.encoders[m].trunk.blocks):
            if keep is not None and i not in keep:
                continue
            pre = f"encoders.{m}.trunk.blocks.{i}.attn"
            if "in_proj" in modules:
                yield f"{pre}.in_proj_weight", blk.attn, "in_proj_weight"
            if "out_proj" in modules:
                yield f"{pre}.out_proj.weight", blk.attn.out_proj, "weight"


def apply_lora(model: ImageBind, modalities: Iterable[str], rank: int = 8, alpha: float = 16.0,
               modules: Iterable[str] = ("in_proj", "out_proj"), blocks: Iterable[int] | None = None) -> list[str]:  # fmt: skip
    """Freeze the encoders of `modalities` and attach trainable adapters; returns the adapted weight paths."""
    modalities = list(modalities)
    for m in modalities:
        model.encoders[m].requires_grad_(False)
    paths = []
    for path, owner, name in targets(model, modalities, modules, blocks):
        W = getattr(owner, name)
        delta = LoRADelta(W.shape[0], W.shape[1], rank, alpha).to(device=W.device, dtype=W.dtype)
        parametrize.register_parametrization(owner, name, delta)
        paths.append(path)
    return paths


def adapters(model: nn.Module) -> Iterator[tuple[str, LoRADelta]]:
    """(weight path, adapter) for every attached adapter."""
    for mod_name, mod in model.named_modules():
        if parametrize.is_parametrized(mod):
            for tensor_name, plist in mod.parametrizations.items():
                for p in plist:
                    if isinstance(p, LoRADelta):
                        yield f"{mod_name}.{tensor_name}", p


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """{'<weight path>.lora_A': A, '<weight path>.lora_B': B} of every adapter."""
    out = {}
    for path, d in adapters(model):
        out[f"{path}.lora_A"], out[f"{path}.lora_B"] = d.A.detach(), d.B.detach()
    return out


def save_lora(model: nn.Module, path: str | Path) -> Path:
    """Write the adapters alone (safetensors with rank/alpha metadata)."""
    items = list(adapters(model))
    if not items:
        raise ValueError("the model has no LoRA adapters to save")
    meta = {"format": FORMAT, "rank": str(items[0][1].rank), "alpha": str(items[0][1].alpha)}
    save_file({k: v.contiguous().cpu() for k, v in lora_state_dict(model).items()}, str(path), metadata=meta)
    return Path(path)


def load_lora(model: nn.Module, path: str | Path) -> list[str]:
    """Attach the adapters stored in `path` (written by `save_lora`) to a base model; returns the weight paths."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a bindkit LoRA file (metadata format={meta.get('format')!r})")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    rank, alpha = int(meta["rank"]), float(meta["alpha"])
    weights = sorted({k.rsplit(".", 1)[0] for k in tensors})
    existing = dict(adapters(model))
    for w in weights:
        owner_path, name = w.rsplit(".", 1)
        owner = model.get_submodule(owner_path)
        if w not in existing:
            W = getattr(owner, name)
            delta = LoRADelta(W.shape[0], W.shape[1], rank, alpha).to(device=W.device, dtype=W.dtype)
            parametrize.register_parametrization(owner, name, delta)
            existing[w] = delta
        with torch.no_grad():
            existing[w].A.copy_(tensors[f"{w}.lora_A"])
            existing[w].B.copy_(tensors[f"{w}.lora_B"])
    return weights


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its weight (W <- W + scale * B @ A, exactly as the forward computes it) and
    remove the parametrizations; the state dict has its plain keys again. In place; returns the model."""
    for path, _ in list(adapters(model)):
        owner_path, name = path.rsplit(".", 1)
        parametrize.remove_parametrizations(model.get_submodule(owner_path), name, leave_parametrized=True)
    return model


def plain_state_dict(model: nn.Module, merged: bool = False) -> dict[str, torch.Tensor]:
    """The state dict under the model's own keys: base weights (or merged ones) without the adapter tensors."""
    adapted = dict(adapters(model))
    out = {}
    for k, v in model.state_dict().items():
        if ".parametrizations." not in k:
            out[k] = v
            continue
        owner, rest = k.split(".parametrizations.", 1)
        name, tail = rest.split(".", 1)
        if tail == "original":
            path = f"{owner}.{name}"
            out[path] = adapted[path](v).detach() if merged else v
    return out


def live_key(model: nn.Module, key: str) -> str:
    """The live state-dict key of a plain key (`...in_proj_weight` -> `...parametrizations.in_proj_weight.original`
    when that weight carries an adapter)."""
    owner, name = key.rsplit(".", 1)
    try:
        mod = model.get_submodule(owner)
    except AttributeError:
        return key
    if parametrize.is_parametrized(mod, name):
        return f"{owner}.parametrizations.{name}.original"
    return key
