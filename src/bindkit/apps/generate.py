"""`generate`: images from an embedding of any modality, by a diffusion model conditioned on image embeddings.

The paper's embedding swap (DALLE-2 given ImageBind audio embeddings): the query is embedded by a bindkit model and
given to a generator as if it were an image embedding. `pipeline` is a local folder, one of

- a Stable unCLIP pipeline (diffusers `StableUnCLIPImg2ImgPipeline`, e.g. stable-diffusion-2-1-unclip with
  `imagebind_huge`; see `bindkit.apps.unclip` for the scale convention and `noise_level`);
- a bindkit decoder (`bindkit.apps.decoder`, e.g. the one `bindkit demo` trains at `<run>/model/decoder/`).

A query is any query `bindkit.apps.query.embed_query` takes: a text (str), a file (Path), an `Embedding`, a raw
vector, or a list of `(kind, value, weight)` terms as in `bindkit search`: the weighted sum of their unit embeddings,
renormalised (embedding arithmetic: an image plus a sound).
Nothing is fetched: the pipeline folder is read with `local_files_only`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bindkit.apps.decoder import Decoder, is_decoder_folder
from bindkit.apps.prior import MeanShiftPrior
from bindkit.apps.query import embed_query, model_fingerprint
from bindkit.model import ImageBind
from bindkit.resolve import load


class DecoderGenerator:
    """A bindkit decoder folder behind the same `sample` call as a Stable unCLIP pipeline, with its mean-shift prior
    (`prior.safetensors`) where the folder has one."""

    def __init__(self, folder: str | Path):
        self.decoder = Decoder.load(folder)
        self.embed_dim = self.decoder.cfg.embed_dim
        self.model_key = self.decoder.cfg.model_key
        self.prior = MeanShiftPrior.load(folder)
        if self.prior is not None and self.prior.width != self.embed_dim:
            raise ValueError(f"{folder}: prior width {self.prior.width} does not match the decoder's {self.embed_dim}")

    def sample(self, emb: torch.Tensor, steps: int, seed: int = 0, guidance: float | None = None,
               **_: Any) -> list[Any]:  # fmt: skip
        """Unit embeddings (N, D) -> N PIL images."""
        from PIL import Image

        x = self.decoder.sample(emb, steps=steps, guidance=guidance, seed=seed)  # (N, 3, S, S) in [0, 1]
        arr = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        return [Image.fromarray(a) for a in arr]


def load_generator(pipeline: str | Path, dtype: torch.dtype = torch.float32, device: str = "cpu") -> Any:
    """The generator a folder holds: a bindkit decoder (`decoder.json`) or a Stable unCLIP pipeline."""
    folder = Path(pipeline)
    if not folder.is_dir():
        raise FileNotFoundError(f"pipeline folder {folder} not found")
    if is_decoder_folder(folder):
        return DecoderGenerator(folder)
    from .unclip import UnclipGenerator

    return UnclipGenerator(folder, dtype=dtype, device=device)


def check_compatible(model: ImageBind, key: str, generator: Any) -> None:
    """The model's embeddings must have the generator's width (and, for a decoder, the fingerprint it was
    trained for)."""
    width = model.config.out_dim
    if width != generator.embed_dim:
        raise ValueError(f"embedding width {width} of model {model.config.name!r} does not match the generator's "
                         f"image-embedding width {generator.embed_dim}")  # fmt: skip
    if generator.model_key and generator.model_key != key:
        raise ValueError(f"the generator was trained on embeddings of model {generator.model_key!r}, not {key!r}")


def generate(model: ImageBind | str | Path, query: Any, pipeline: str | Path, out: str | Path | None = None,
             steps: int | None = None, seed: int = 0, num_images: int = 1, guidance: float | None = None,
             scale: float | str = "auto", noise_level: int = 0, prompt: str = "",
             generator: Any = None, prior: bool = False) -> list[Any]:  # fmt: skip
    """Images (PIL) drawn from the query's embedding; written to `out/<seed>-<i>.png` when `out` is given.

    With `prior`, where the generator has a mean-shift prior (`bindkit.apps.prior`), each query term is moved by its
    modality's offset before the terms are summed (opt-in: it gave no gain in the demo; see docs/applications.md).
    Every check (steps, pipeline parts, widths, fingerprints) runs before any denoising, and nothing is written
    unless every image was drawn."""
    if steps is not None and (not isinstance(steps, int) or steps <= 0):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(num_images, int) or num_images <= 0:
        raise ValueError(f"num_images must be a positive int, got {num_images!r}")
    gen = generator or load_generator(pipeline)
    m: ImageBind = load(model)
    key = model_fingerprint(m)
    check_compatible(m, key, gen)
    shift = getattr(gen, "prior", None) if prior else None
    emb = embed_query(m, query, shift=shift.shift if shift else None)  # checks every term before embedding any
    n_steps = steps or (gen.decoder.cfg.steps if isinstance(gen, DecoderGenerator) else 30)
    images = gen.sample(emb.vector[None].expand(num_images, -1), steps=n_steps, seed=seed, guidance=guidance,
                        scale=scale, noise_level=noise_level, prompt=prompt)  # fmt: skip
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(images):
            img.save(folder / f"{seed}-{i}.png")
    return images
