"""A small unCLIP decoder: a diffusers UNet that draws an image from one embedding of a bindkit space.

unCLIP's decoder stage in miniature. The UNet is diffusers' `UNet2DConditionModel` conditioned the way Stable unCLIP
conditions on an image embedding: `class_embed_type="projection"` (the embedding is projected and added to the
timestep embedding), with no cross-attention blocks; and, beside it, a learned linear map of the embedding to a
small picture concatenated to the UNet's input (`cond_channels`), which lets it place strokes. It denoises the image pixel-unshuffled by `patch` (32 px RGB ->
(12, 16, 16)), which costs about a quarter of denoising 32 px directly. Sampling is a diffusers scheduler (DDIM by
default) with classifier-free guidance against the zero embedding, which is what the decoder sees for a dropped
condition in training (Stable unCLIP's unconditional input is also zeros).

Folder (`save` / `load`): `decoder.json` (the config, with the fingerprint of the bindkit model whose image
embeddings it was trained on), `decoder.safetensors`, `scheduler/` (the training noise schedule).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG, WEIGHTS, SCHEDULER = "decoder.json", "decoder.safetensors", "scheduler"
SAMPLERS = ("ddim", "dpm")


@dataclass(frozen=True)
class DecoderConfig:
    """Shape of the decoder and its sampling defaults."""

    embed_dim: int = 64  # width of the conditioning embedding
    image_size: int = 32
    patch: int = 2  # pixel-unshuffle factor: the UNet sees (3 * patch**2, size / patch, size / patch)
    channels: tuple[int, ...] = (64, 128)
    layers_per_block: int = 1
    cond_channels: int = 4  # channels of the embedding's learned spatial map, concatenated to the UNet's input
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"  # the clean image: usable samples after few training steps (see docs)
    steps: int = 20  # default sampling steps
    guidance: float = 3.0  # default classifier-free guidance scale
    sampler: str = "ddim"
    model_key: str = ""  # bindkit.store.model_key of the model whose embeddings condition it

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecoderConfig:
        """Inverse of `dataclasses.asdict` (tuples restored)."""
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        d.setdefault("cond_channels", 0)  # decoders saved before the spatial map had none
        return cls(**d)


class Decoder(nn.Module):
    """The UNet's prediction at (x_t, t | embedding): a diffusers UNet on pixel-unshuffled images, conditioned through
    its class embedding and a spatial map of the embedding concatenated to its input."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        from diffusers import UNet2DConditionModel

        self.cfg = cfg
        n, c, h = len(cfg.channels), 3 * cfg.patch**2, cfg.image_size // cfg.patch
        # The class embedding is one vector per image, so spatially flat: a conv net can place strokes from it only
        # through the padding's position cues, which it learns slowly. A linear map from the embedding to a (k, h, h)
        # picture, concatenated to the input (concat conditioning, as diffusers' upscalers take their low-res
        # image), gives every pixel its own view of the embedding.
        self.cond_map = nn.Linear(cfg.embed_dim, cfg.cond_channels * h * h) if cfg.cond_channels else None
        self.unet: Any = UNet2DConditionModel(
            sample_size=h, in_channels=c + cfg.cond_channels, out_channels=c,
            down_block_types=("DownBlock2D",) * n, up_block_types=("UpBlock2D",) * n, mid_block_type=None,
            block_out_channels=cfg.channels, layers_per_block=cfg.layers_per_block, norm_num_groups=8,
            class_embed_type="projection", projection_class_embeddings_input_dim=cfg.embed_dim,
            cross_attention_dim=8,
        )  # fmt: skip

    def forward(self, x: torch.Tensor, t: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, S, S) at timesteps t (B,), embeddings (B, D) -> the UNet's prediction (B, 3, S, S)."""
        p = self.cfg.patch
        z = F.pixel_unshuffle(x, p)  # (B, 3p^2, S/p, S/p)
        ctx = z.new_zeros(len(z), 1, self.unet.config.cross_attention_dim)  # no cross-attention block reads it
        cond = emb * self.cfg.embed_dim**0.5  # unit embeddings have entries ~ 1/sqrt(D): give the MLP unit-scale input
        if self.cond_map is not None:
            k, h = self.cfg.cond_channels, z.shape[-1]
            z = torch.cat([z, self.cond_map(cond.to(z.dtype)).view(len(z), k, h, h).to(z.dtype)], dim=1)  # (B, c+k, h, h)
        out = self.unet(z, t, encoder_hidden_states=ctx, class_labels=cond.to(z.dtype)).sample
        return F.pixel_shuffle(out, p)

    def noise_scheduler(self) -> Any:
        """The training noise schedule (diffusers DDPMScheduler)."""
        from diffusers import DDPMScheduler

        return DDPMScheduler(num_train_timesteps=self.cfg.train_timesteps, beta_schedule=self.cfg.beta_schedule,
                             prediction_type=self.cfg.prediction_type, clip_sample=False)  # fmt: skip

    def sampler(self, name: str | None = None) -> Any:
        """A diffusers sampling scheduler built from the training schedule: `ddim` or `dpm` (DPM-Solver++)."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        name = name or self.cfg.sampler
        if name not in SAMPLERS:
            raise ValueError(f"unknown sampler {name!r}; use one of {SAMPLERS}")
        cls = DDIMScheduler if name == "ddim" else DPMSolverMultistepScheduler
        return cls.from_config(self.noise_scheduler().config)

    @torch.no_grad()
    def sample(self, emb: torch.Tensor, steps: int | None = None, guidance: float | None = None, seed: int = 0,
               sampler: str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:  # fmt: skip
        """Embeddings (N, D) -> images (N, 3, S, S) in [0, 1]; the same seed gives the same images."""
        steps, guidance = steps or self.cfg.steps, self.cfg.guidance if guidance is None else guidance
        sched = self.sampler(sampler)
        sched.set_timesteps(steps)
        gen = torch.Generator().manual_seed(seed)
        s = self.cfg.image_size
        x = torch.randn(len(emb), 3, s, s, generator=gen) * sched.init_noise_sigma
        cond = torch.cat([torch.zeros_like(emb), emb]).float()  # (2N, D): unconditional first
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            for t in sched.timesteps:
                xin = sched.scale_model_input(torch.cat([x, x]), t)
                uncond, cnd = self(xin, t.expand(len(xin)), cond).float().chunk(2)
                x = sched.step(uncond + guidance * (cnd - uncond), t, x).prev_sample
        return (x.float() / 2 + 0.5).clamp(0, 1)

    def save(self, folder: str | Path) -> Path:
        """Write the decoder folder (see the module docstring)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(folder / WEIGHTS))  # fmt: skip
        self.noise_scheduler().save_pretrained(folder / SCHEDULER)
        (folder / CONFIG).write_text(json.dumps(dataclasses.asdict(self.cfg), indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Decoder:
        """A decoder written by `save`, in eval mode."""
        folder = Path(folder)
        for name in (CONFIG, WEIGHTS):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"decoder folder {folder} lacks {name}")
        dec = cls(DecoderConfig.from_dict(json.loads((folder / CONFIG).read_text())))
        dec.load_state_dict(load_file(str(folder / WEIGHTS)))
        return dec.eval()


def is_decoder_folder(folder: str | Path) -> bool:
    """Whether a folder holds a decoder written by `Decoder.save`."""
    return (Path(folder) / CONFIG).is_file()
