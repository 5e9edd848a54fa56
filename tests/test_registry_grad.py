"""Every registered config, every modality: a real forward and backward pass on the CPU (timm's registry tests).

One encoder at a time, batch 1, freed after. Encoders above 50M parameters (imagebind_huge's vision 633M, text
354M, audio 86M and thermal 86M) are built with their first 2 blocks: same width, heads, stem, head, input size
and token count, so every code path runs; the full depth would need about 5 GiB for the vision weights and
gradients alone and minutes per pass on a 2-core CPU. Everything else (huge depth and IMU included) runs at full
depth. The whole set takes about half a minute and 1.4 GiB here.
"""

import pytest
import torch

from bindkit import ImageBind, get_config, list_configs
from bindkit.demo.settings import register_demo_config

MAX_PARAMS = 50_000_000
register_demo_config()  # the demo's config registers itself on first use: cover it whatever ran before
CASES = [(name, m) for name in list_configs() for m in get_config(name).encoders]


def _config(name: str, modality: str):
    cfg = get_config(name).select([modality])
    enc = cfg.encoders[modality]
    with torch.device("meta"):
        n = sum(p.numel() for p in ImageBind(cfg).parameters())
    if n > MAX_PARAMS:
        cfg = cfg.replace_encoder(modality, depth=2)
    return cfg, enc


def _input(enc) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if enc.modality == "text":
        ids = torch.randint(1, enc.vocab_size - 2, (1, enc.input_shape[0]), generator=g)
        ids[0, 0], ids[0, 5], ids[0, 6:] = 49406, 49407, 0  # SOT, four words, EOT, padding
        return ids
    return torch.randn(1, *enc.input_shape, generator=g)


@pytest.mark.parametrize("name, modality", CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_forward_and_backward(name, modality, one_torch_thread):
    cfg, enc = _config(name, modality)
    torch.manual_seed(0)
    model = ImageBind(cfg).eval()  # eval: dropout and drop-path off, so every parameter is on the path
    y = model({modality: _input(enc)})[modality]
    assert y.shape == (1, cfg.out_dim) and torch.isfinite(y).all()
    want = model.scale(modality)  # the postprocessor: L2 normalisation times the logit scale
    torch.testing.assert_close(y.norm(dim=-1), torch.tensor([want]), rtol=1e-4, atol=1e-4)
    direction = torch.randn(cfg.out_dim, generator=torch.Generator().manual_seed(1))
    (y @ direction).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname}: no gradient (not on the forward path)"
        assert torch.isfinite(p.grad).all(), f"{pname}: non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{pname}: zero gradient"
    del model, y


def test_cases_cover_the_registry():
    assert {n for n, _ in CASES} == set(list_configs()) and len(CASES) == 6 * len(list_configs())
