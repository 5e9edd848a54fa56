"""Parity with the official implementation: every stored tensor of the random-weight fixture, in fp32."""

import json

import pytest
import torch
from safetensors.torch import load_file

import bindkit
from bindkit.checkpoint import from_official_state_dict, to_official_state_dict

CASES = ["vision_image", "vision_video", "audio", "depth", "thermal", "imu", "text"]


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    root = fixtures_dir / "model"
    meta = json.loads((root / "cases.json").read_text())
    cfg = bindkit.ImageBindConfig.from_official_kwargs(
        json.loads((root / "config.json").read_text())["kwargs"]
    )
    model = bindkit.load_official_checkpoint(root / "checkpoint.pth", config=cfg)
    return model, meta, load_file(root / "cases.safetensors"), root


def _close(name, got, ref, meta_case):
    tol = 1e-5 * max(1.0, meta_case["tensors"][name]["max_abs"])
    err = (got.float() - ref.float()).abs().max().item()
    assert got.shape == ref.shape, f"{name}: shape {tuple(got.shape)} vs {tuple(ref.shape)}"
    assert err <= tol, f"{name}: max abs error {err:.3g} > {tol:.3g}"


@pytest.mark.parametrize("case", CASES)
def test_every_tensor_matches(fixture, case):
    model, meta, t, _ = fixture
    mc = meta["cases"][case]
    modality = mc["modality"]
    x = t[f"{case}.input"]
    enc = model.encoder(modality)
    trace: dict = {}
    with torch.no_grad():
        items = x.flatten(0, 1) if x.ndim >= 5 else x
        enc.embed_items(items, trace)
        out = model({modality: x})[modality]
    names = {
        f"{case}.preprocessor.tokens": trace["tokens"],
        f"{case}.trunk": trace["trunk"],
        f"{case}.head": trace["head"],
        f"{case}.postprocessor": trace["post"],
        f"{case}.output": out,
    }
    keep = list(trace["keep"])
    if f"{case}.trunk.pre_ln" in mc["tensors"]:
        names[f"{case}.trunk.pre_ln"] = keep.pop(0)
    for i, block_out in enumerate(keep[:-1]):
        names[f"{case}.trunk.block_{i}"] = block_out
    if "seq_len" in trace:
        assert torch.equal(trace["seq_len"], t[f"{case}.preprocessor.seq_len"])
    stored = [n for n in mc["tensors"] if n != f"{case}.input" and n.split(".")[-1] != "seq_len"]
    assert set(stored) == set(names), f"untested stored tensors: {set(stored) ^ set(names)}"
    for name in stored:
        _close(name, names[name], t[name], mc)


def test_round_trip_is_bit_exact(fixture, tmp_path):
    model, _, _, root = fixture
    original = torch.load(root / "checkpoint.pth", weights_only=True)
    again = to_official_state_dict(model)
    assert list(again) == list(original)  # same keys, same order
    for k, v in original.items():
        assert again[k].dtype == v.dtype and torch.equal(again[k], v), k
    # official -> bindkit safetensors folder -> official
    bindkit.save_model(model, tmp_path / "m")
    reloaded = bindkit.load_model(tmp_path / "m")
    for k, v in to_official_state_dict(reloaded).items():
        assert torch.equal(v, original[k]), k
    path = tmp_path / "again.pth"
    bindkit.save_official_checkpoint(reloaded, path)
    assert all(torch.equal(a, original[k]) for k, a in torch.load(path, weights_only=True).items())


def test_strict_loading_names_bad_keys(fixture):
    model, _, _, root = fixture
    sd = dict(torch.load(root / "checkpoint.pth", weights_only=True))
    cfg = model.config
    bad = dict(sd)
    bad.pop("modality_trunks.audio.blocks.1.attn.bias_k")
    bad["modality_heads.depth.2.weight"] = torch.zeros(3, 3)
    bad["something.else"] = torch.zeros(1)
    with pytest.raises(ValueError) as e:
        from_official_state_dict(bad, cfg)
    msg = str(e.value)
    assert "modality_trunks.audio.blocks.1.attn.bias_k" in msg
    assert "modality_heads.depth.2.weight" in msg and "something.else" in msg


def test_partial_load_matches_full(fixture):
    model, _, t, root = fixture
    part = bindkit.load_official_checkpoint(
        root / "checkpoint.pth", config=model.config, modalities=["audio", "text"]
    )
    assert set(part.encoders) == {"audio", "text"}
    x = t["audio.input"]
    with torch.no_grad():
        assert torch.equal(part({"audio": x})["audio"], model({"audio": x})["audio"])


@pytest.mark.parametrize("path", ["plain_training", "cpu_fast"])
def test_outputs_match_on_the_training_path_and_the_fast_path(fixture, path):
    """The plain modules with gradients on (what training runs), and the opt-in packed CPU path without them."""
    from bindkit.runtime.cpu import unpack_for_cpu

    model, meta, t, _ = fixture
    if path == "cpu_fast":
        model.pack_for_cpu(rows=256)
    try:
        for case in CASES:
            mc = meta["cases"][case]
            with torch.set_grad_enabled(path == "plain_training"):
                out = model({mc["modality"]: t[f"{case}.input"]})[mc["modality"]]
            assert out.requires_grad == (path == "plain_training")
            _close(f"{case}.output", out.detach(), t[f"{case}.output"], mc)
    finally:
        unpack_for_cpu(model)
