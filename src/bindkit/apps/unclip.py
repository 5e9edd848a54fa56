"""Stable unCLIP (diffusers' `StableUnCLIPImg2ImgPipeline`) from a local folder, conditioned on bindkit embeddings.

`imagebind_huge`'s vision space is OpenCLIP ViT-H/14's image space, the space Stable unCLIP 2.1 ("-unclip-h") is
conditioned on through `image_embeds=`; so an ImageBind audio, depth, thermal, IMU or text embedding can take an
image embedding's place. The pipeline's own image encoder is never loaded (bindkit supplies the embedding).

Scale: bindkit embeddings are unit-norm (ImageBind's vision head L2-normalises its output, so unit norm is also the
vision output's own scale); Stable unCLIP was trained on OpenCLIP's raw projection outputs, whose per-dimension
mean and std the pipeline carries in `image_normalizer`. `scale="auto"` (the default) rescales the unit embedding to
the norm those statistics imply, sqrt(sum(mean**2 + std**2)), i.e. the root-mean-square norm of the embeddings it
was trained on; a number sets the norm directly (1.0 passes the unit embedding as is). `noise_level` (0 to the
noising scheduler's timesteps - 1) is Stable unCLIP's own augmentation: it noises the embedding before conditioning,
so higher levels give more varied, less faithful images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

PARTS = ("unet", "vae", "scheduler", "text_encoder", "tokenizer", "image_normalizer", "image_noising_scheduler")


def check_folder(folder: Path) -> dict[str, Any]:
    """Refuse a folder that is not a Stable unCLIP pipeline with an image-embedding UNet; returns the UNet config."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"pipeline folder {folder}: no model_index.json (a diffusers pipeline folder, e.g. "
                                "stable-diffusion-2-1-unclip, or a bindkit decoder folder is expected)")  # fmt: skip
    listed = json.loads(index.read_text())
    missing = [p for p in PARTS if p not in listed or not (folder / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"pipeline folder {folder} lacks the part(s) {missing}: Stable unCLIP needs "
                                f"{list(PARTS)}")  # fmt: skip
    unet_cfg_path = folder / "unet" / "config.json"
    if not unet_cfg_path.is_file():
        raise FileNotFoundError(f"pipeline folder {folder}: unet/config.json is missing")
    unet = json.loads(unet_cfg_path.read_text())
    if unet.get("class_embed_type") != "projection" or not unet.get("projection_class_embeddings_input_dim"):
        raise ValueError(f"pipeline folder {folder}: its UNet takes no image embedding (class_embed_type="
                         f"{unet.get('class_embed_type')!r}); a Stable unCLIP UNet has class_embed_type "
                         "'projection'")  # fmt: skip
    return unet


def embeds_only_pipeline() -> Any:
    """`StableUnCLIPImg2ImgPipeline` taking only `image_embeds` (diffusers reads the image encoder's dtype even
    then, and bindkit never loads that encoder)."""
    from diffusers import StableUnCLIPImg2ImgPipeline

    class EmbedsOnly(StableUnCLIPImg2ImgPipeline):
        def _encode_image(self, image, device, batch_size, num_images_per_prompt, do_classifier_free_guidance,
                          noise_level, generator, image_embeds):  # fmt: skip
            if image_embeds is None:
                raise ValueError("this pipeline takes image_embeds only (bindkit embeddings)")
            x = image_embeds.to(device=device, dtype=self.unet.dtype)  # (N, D)
            x = self.noise_image_embeddings(image_embeds=x, noise_level=noise_level, generator=generator)
            x = x.repeat_interleave(num_images_per_prompt, dim=0)  # (N * images, 2D): [embedding, noise-level emb]
            return torch.cat([torch.zeros_like(x), x]) if do_classifier_free_guidance else x

    return EmbedsOnly


class UnclipGenerator:
    """A loaded Stable unCLIP pipeline; `embed_dim` is the image-embedding width it takes."""

    model_key = ""  # any model whose vision space is the pipeline's (checked by width only)

    def __init__(self, folder: str | Path, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        self.folder = Path(folder)
        unet = check_folder(self.folder)
        self.embed_dim = int(unet["projection_class_embeddings_input_dim"]) // 2  # [embedding, noise-level emb]
        self.pipe = embeds_only_pipeline().from_pretrained(
            self.folder, image_encoder=None, feature_extractor=None, local_files_only=True, dtype=dtype
        ).to(device)
        self.pipe.set_progress_bar_config(disable=True)

    def auto_norm(self) -> float:
        """The root-mean-square norm of the embeddings the pipeline was trained on (from its normalizer)."""
        n = self.pipe.image_normalizer
        return float((n.mean.detach().float() ** 2 + n.std.detach().float() ** 2).sum().sqrt())

    def sample(self, emb: torch.Tensor, steps: int, seed: int = 0, guidance: float | None = None,
               scale: float | str = "auto", noise_level: int = 0, prompt: str = "", size: int | None = None,
               ) -> list[Any]:  # fmt: skip
        """Unit embeddings (N, D) -> N PIL images; the prompt (default empty) goes to the text path."""
        norm = self.auto_norm() if scale == "auto" else float(scale)
        p = self.pipe
        x = (emb.float() * norm).to(p.device, p.unet.dtype)  # (N, D)
        kw = {} if size is None else {"height": size, "width": size}
        out = p(prompt=[prompt] * len(x), image_embeds=x, noise_level=noise_level, num_inference_steps=steps,
                guidance_scale=10.0 if guidance is None else guidance, output_type="pil",
                generator=torch.Generator(device="cpu").manual_seed(seed), **kw)  # fmt: skip
        return list(out.images)
