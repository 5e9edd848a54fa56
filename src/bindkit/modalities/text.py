"""Text stem: token embedding plus positional embedding; the head pools the first end-of-text token (pool="eot")."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bindkit.config import EncoderConfig
from bindkit.modalities.common import ConfigStem, check_shape
from bindkit.modalities.spec import ModalitySpec

EOT_ID = 49407


class TextStem(ConfigStem):
    """Embedding(vocab, D) + pos_embed (the full context length, always)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__(cfg)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.input_shape[0], cfg.width))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) int64 -> (N, L, D)."""
        return self.token_embedding(ids) + self.pos_embed

    def validate(self, ids: torch.Tensor) -> None:
        """Integer ids [B, context], each row holding an EOT token, every id inside the vocabulary."""
        n = self.cfg.input_shape[0]
        check_shape(
            ids,
            self.cfg,
            f"token ids [B,{n}] (use bindkit.data.tokenize)",
            ids.ndim == 2 and ids.shape[1] == n,
        )
        if ids.is_floating_point() or ids.dtype == torch.bool:
            raise TypeError(f"text: expected integer token ids, got {ids.dtype}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.cfg.vocab_size):
            raise ValueError(f"text: token ids must lie in [0, {self.cfg.vocab_size})")
        missing = (~(ids == EOT_ID).any(dim=1)).nonzero().flatten().tolist()
        if missing:
            raise ValueError(
                f"text: rows {missing} have no end-of-text token ({EOT_ID}); the head pools at EOT"
            )


def context(enc: EncoderConfig) -> dict[str, Any]:
    """tokenize options: the context length."""
    return {"context_length": enc.input_shape[0]}


TEXT = ModalitySpec(
    name="text", encoder="text", stem=TextStem, loader="bindkit.data.text:tokenize", sizes=context,
    extensions=(".txt",), hints=("text", "texts", "captions"), text_items=True,
)  # fmt: skip
