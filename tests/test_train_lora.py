"""LoRA on attention projections: starts at the base model, trains only adapters, saves apart, merges exactly."""

import pytest
import torch
from safetensors.torch import load_file

import bindkit
from _train_utils import config, small_model
from bindkit.train import LoRAConfig, apply_lora, load_lora, merge_lora, save_lora, train
from bindkit.train.lora import plain_state_dict

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _depth(seed=0):
    return torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_adapters_start_at_base_train_alone_and_merge_bit_exactly(tmp_path):
    model = small_model().eval()
    x = _depth()
    base_out = model({"depth": x})["depth"]
    base = {k: v.clone() for k, v in model.state_dict().items()}
    paths = apply_lora(model, ["depth"], rank=4, alpha=8.0, modules=("in_proj", "out_proj"))
    assert len(paths) == 2 * 2  # two blocks, two projections each
    assert torch.equal(model({"depth": x})["depth"], base_out)  # B = 0: the adapted model is the base model
    trainable = [n for n, p in model.encoders["depth"].named_parameters() if p.requires_grad]
    assert len(trainable) == 8 and all(n.endswith((".A", ".B")) for n in trainable)
    with torch.no_grad():  # give the adapters values, as training would
        for n, p in model.named_parameters():
            if n.endswith(".B"):
                p.normal_(0, 0.1)
    adapted_out = model({"depth": x})["depth"]
    assert not torch.allclose(adapted_out, base_out)
    # The hand-computed merged weight of one projection: W + alpha / rank * B @ A.
    attn = model.encoders["depth"].trunk.blocks[0].attn
    d = attn.parametrizations.in_proj_weight[0]
    assert torch.equal(
        attn.in_proj_weight, base["encoders.depth.trunk.blocks.0.attn.in_proj_weight"] + 2.0 * d.B @ d.A
    )
    # Saved apart, re-attached to a fresh base, merged: the same weights and bit-identical outputs.
    save_lora(model, tmp_path / "lora.safetensors")
    assert set(load_file(tmp_path / "lora.safetensors")) == {f"{p}.lora_{s}" for p in paths for s in "AB"}
    assert plain_state_dict(model).keys() == base.keys()
    assert all(torch.equal(plain_state_dict(model)[k], v) for k, v in base.items())  # base weights untouched
    fresh = small_model().eval()
    load_lora(fresh, tmp_path / "lora.safetensors")
    assert torch.equal(fresh({"depth": x})["depth"], adapted_out)
    merge_lora(fresh)
    assert fresh.state_dict().keys() == base.keys()
    assert torch.equal(fresh({"depth": x})["depth"], adapted_out)
    merged = merge_lora(model)
    assert all(torch.equal(merged.state_dict()[k], v) for k, v in fresh.state_dict().items())


def test_lora_run_saves_adapters_and_a_merged_model(tmp_path):
    model = small_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = config(tmp_path, steps=4, encoders={"depth": "lora"}, lora=LoRAConfig(rank=2, alpha=4.0, modules=("out_proj",)),
                 pair={"lr": 1e-2})  # fmt: skip
    res = train(cfg, model=model)
    run = tmp_path / "run"
    assert res.lora_path == run / "final" / "lora.safetensors" and len(load_file(res.lora_path)) == 2 * 2
    assert (run / "checkpoints" / "step_00000004" / "lora.safetensors").is_file()
    # Base checkpoint weights are the untouched base; the final model is base + adapters, merged.
    ck = bindkit.load_model(run / "checkpoints" / "step_00000004" / "model")
    assert all(torch.equal(ck.state_dict()[k], v) for k, v in before.items())
    final = bindkit.load_model(res.model_dir)
    rebuilt = small_model()
    load_lora(rebuilt, res.lora_path)
    merge_lora(rebuilt)
    changed = [k for k, v in before.items() if not torch.equal(final.state_dict()[k], v)]
    assert changed and all(k.endswith("out_proj.weight") and ".depth." in k for k in changed)
    assert all(torch.equal(final.state_dict()[k], v) for k, v in rebuilt.state_dict().items())
