"""An encoder per modality (stem -> trunk -> head -> postprocess) and the ImageBind container around them."""

from __future__ import annotations

from collections.abc import ItemsView, ValuesView
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from bindkit.config import EncoderConfig, ImageBindConfig, canonical
from bindkit.dense import dense_embeddings
from bindkit.heads import Head, Postprocess
from bindkit.modalities import STEMS, Stem
from bindkit.trunk import Trunk


def eot_index(ids: torch.Tensor) -> torch.Tensor:
    """Index of the first end-of-text token per row (EOT is the largest id, so this is argmax)."""
    return ids.argmax(dim=-1)


def make_stem(cfg: EncoderConfig) -> Stem:
    """The registered stem of an encoder (see `bindkit.modalities`)."""
    if cfg.modality not in STEMS:
        raise KeyError(f"no stem registered for modality {cfg.modality!r}; known: {sorted(STEMS)}")
    stem = STEMS[cfg.modality](cfg)
    if not isinstance(stem, nn.Module):
        raise TypeError(f"{cfg.modality}: a stem must be an nn.Module, got {type(stem).__name__}")
    return stem


class Encoder(nn.Module):
    """One modality: stem, trunk, head and postprocessor, with the official clip averaging."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = make_stem(cfg)
        self.trunk = Trunk(cfg)
        self.head = Head(cfg)
        self.post = Postprocess(cfg)

    def forward(self, x: torch.Tensor, trace: dict[str, Any] | None = None) -> torch.Tensor:
        """[B, ...] or clips [B, S, ...] -> [B, out_dim], postprocessed and averaged over clips after scaling."""
        self.stem.validate(x)
        if x.is_floating_point():
            x = x.to(self.head.proj.weight.dtype)
        if x.ndim < 5:
            return self.embed_items(x, trace)
        # The official rule: any >=5-D input is (B, S, ...) clips, averaged without renormalising.
        B, S = x.shape[:2]
        return self.embed_items(x.flatten(0, 1), trace).unflatten(0, (B, S)).mean(1)

    def embed_items(self, x: torch.Tensor, trace: dict[str, Any] | None = None) -> torch.Tensor:
        """Items without a clip dimension -> (N, out). `trace` collects intermediates for parity tests."""
        keep: list[torch.Tensor] | None = [] if trace is not None else None
        tokens = self.stem(x)  # (N, L, D)
        h = self.trunk(tokens, keep)
        index = eot_index(x) if self.cfg.pool == "eot" else None  # None: the CLS token
        head = self.head(h, index)  # (N, out)
        out = self.post(head)
        if trace is not None:
            trace.update(tokens=tokens, trunk=h, head=head, post=out, keep=keep)
            if index is not None:
                trace["seq_len"] = index
        return out

    @property
    def scale(self) -> float:
        """The logit scale applied to this modality's outputs (1.0 when unscaled)."""
        return float(self.post.scale.detach())


if TYPE_CHECKING:

    class EncoderDict(nn.ModuleDict):
        """What `ImageBind.encoders` holds, for the type checker: an `nn.ModuleDict` of `Encoder`s."""

        def __getitem__(self, key: str) -> Encoder: ...
        def values(self) -> ValuesView[Encoder]: ...
        def items(self) -> ItemsView[str, Encoder]: ...


class ImageBind(nn.Module):
    """The six-modality model. `forward` keeps the official semantics; `encode` returns unit-norm embeddings."""

    def __init__(self, config: ImageBindConfig):
        super().__init__()
        self.config = config
        # nn.ModuleDict is untyped: the cast tells the checker its values are Encoders.
        self.encoders = cast("EncoderDict", nn.ModuleDict({m: Encoder(c) for m, c in config.encoders.items()}))

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{modality: tensor} -> {modality: [B, out_dim]}, scaled per modality and averaged over clips."""
        encoders = {name: self.encoder(name) for name in inputs}  # fail on unknown names before any compute
        return {name: encoders[name](x) for name, x in inputs.items()}

    @torch.no_grad()
    def encode(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unit-norm float32 embeddings for cosine search (clip averages renormalised); no gradients."""
        return {name: F.normalize(y.float(), dim=-1) for name, y in self.forward(inputs).items()}

    def encode_dense(self, images: torch.Tensor, method: str = "value") -> torch.Tensor:
        """Images [B, 3, H, W] -> unit-norm float32 per-patch embeddings [B, h, w, out] (see `bindkit.dense`)."""
        if "vision" not in self.encoders:
            raise ValueError(f"encode_dense needs a vision encoder; this model has {list(self.encoders)}")
        return dense_embeddings(self.encoder("vision"), images, method).dense

    def pack_for_cpu(self, rows: int = 1024) -> ImageBind:
        """Opt in to the CPU inference fast path (`bindkit.runtime.cpu`: fused oneDNN linears on packed weights,
        matmul-softmax attention in bf16); costs one more copy of the linear weights. Returns the model."""
        from bindkit.runtime.cpu import pack_for_cpu

        pack_for_cpu(self, rows)
        return self

    def encoder(self, modality: str) -> Encoder:
        """The encoder for a modality name (`image` and `video` mean vision)."""
        m = canonical(modality)
        if m not in self.encoders:
            raise KeyError(f"unknown modality {modality!r}; this model has {list(self.encoders)}")
        return self.encoders[m]

    def scale(self, modality: str) -> float:
        """The logit scale of a modality's `forward` outputs (vision: 1.0)."""
        return self.encoder(modality).scale
