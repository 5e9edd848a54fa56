"""A short example that embeds generated inputs of every modality and prints their cross-modal similarities."""

from __future__ import annotations

import torch

from bindkit.model import ImageBind
from bindkit.registry import get_config


def example_inputs(
    config_name: str = "imagebind_tiny", batch: int = 2, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random model-layout inputs for every modality of a config (text: SOT, one word, EOT)."""
    cfg = get_config(config_name)
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(batch, *e.input_shape, generator=g) for m, e in cfg.encoders.items() if m != "text"}
    ids = torch.zeros(batch, cfg.encoders["text"].input_shape[0], dtype=torch.long)
    ids[:, :3] = torch.tensor([49406, 320, 49407])
    x["text"] = ids
    return x


def run_example(config_name: str = "imagebind_tiny", batch: int = 2) -> dict[str, torch.Tensor]:
    """Embed generated inputs with a randomly initialised model and print shapes, norms and similarities."""
    torch.manual_seed(0)
    model = ImageBind(get_config(config_name)).eval()
    out = model.encode(example_inputs(config_name, batch))
    print(f"{config_name}: {sum(p.numel() for p in model.parameters()):,} parameters (random weights)")
    for m, e in out.items():
        print(
            f"  {m:8} -> {tuple(e.shape)}  norm {e.norm(dim=-1).mean():.3f}  logit scale {model.scale(m):.2f}"
        )
    names = list(out)
    sims = torch.stack([out[m][0] for m in names]) @ torch.stack([out[m][0] for m in names]).T
    print("cosine similarity of item 0 across modalities:")
    print("          " + " ".join(f"{m:>8}" for m in names))
    for m, row in zip(names, sims, strict=True):
        print(f"  {m:8}" + " ".join(f"{v:8.3f}" for v in row.tolist()))
    return out
