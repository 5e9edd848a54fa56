"""unCLIP's prior stage in its simplest form: a mean shift across the modality gap.

A decoder learns from image embeddings only. Every modality's embeddings sit in a cone of their own (the modality
gap, Liang et al. 2022, "Mind the Gap"), so an audio or text embedding reaches the decoder off the distribution it
learned, even where it names the right digit. unCLIP bridges text to image embeddings with a trained prior;
`MeanShiftPrior` is the least such prior that needs no pairs: a query of modality m moves by
`mean(image) - mean(m)`, the difference of the two modalities' mean unit embeddings over *unpaired* items, and is
renormalised. Image queries, and vectors of unknown modality, pass unchanged.

Stored beside a decoder as `prior.safetensors` (one (D,) mean per modality, `vision` included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

PRIOR = "prior.safetensors"
IMAGE = "vision"  # the space the decoder learned; `image` queries are vision queries


@dataclass
class MeanShiftPrior:
    """Per-modality mean unit embeddings; `shift` moves a query from its modality's mean to the image mean."""

    means: dict[str, torch.Tensor]  # modality -> (D,) mean of unit embeddings

    def __post_init__(self) -> None:
        if IMAGE not in self.means:
            raise ValueError(f"a mean-shift prior needs the {IMAGE!r} mean; got {sorted(self.means)}")
        widths = {tuple(v.shape) for v in self.means.values()}
        if len(widths) != 1 or len(next(iter(widths))) != 1:
            raise ValueError(f"every prior mean must be one (D,) vector; got shapes {sorted(widths)}")

    @property
    def width(self) -> int:
        """The embedding width D."""
        return int(self.means[IMAGE].shape[0])

    @classmethod
    def fit(cls, embeddings: dict[str, torch.Tensor]) -> MeanShiftPrior:
        """Means of each modality's embeddings ({modality: (N, D)}, normalised here); no pairing is needed."""
        return cls({_key(m): F.normalize(e.float(), dim=-1).mean(0) for m, e in embeddings.items()})

    def shift(self, emb: torch.Tensor, modality: str | None) -> torch.Tensor:
        """Unit embeddings (N, D) or (D,) of `modality` -> moved to the image cone, unit; unknown modality: as is."""
        m = _key(modality) if modality else None
        if m is None or m == IMAGE or m not in self.means:
            return emb
        return F.normalize(emb.float() + (self.means[IMAGE] - self.means[m]), dim=-1)

    def save(self, folder: str | Path) -> Path:
        """Write `prior.safetensors` into the folder."""
        path = Path(folder) / PRIOR
        save_file({m: v.detach().float().contiguous() for m, v in self.means.items()}, str(path))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> MeanShiftPrior | None:
        """The prior a folder holds, or None where it has none."""
        path = Path(folder) / PRIOR
        return cls(load_file(str(path))) if path.is_file() else None


def _key(modality: str) -> str:
    return IMAGE if modality in ("image", IMAGE) else modality


__all__ = ["MeanShiftPrior", "PRIOR"]
