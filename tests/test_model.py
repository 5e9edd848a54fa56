"""Model behaviour beyond parity: registry, config round trips, input checks, encode semantics, bf16."""

import json

import pytest
import torch

import bindkit
from bindkit import ImageBind, ImageBindConfig, get_config, list_configs


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return ImageBind(get_config("imagebind_tiny")).eval()


def _inputs(cfg, b=2):
    g = torch.Generator().manual_seed(1)
    x = {m: torch.randn(b, *e.input_shape, generator=g) for m, e in cfg.encoders.items() if m != "text"}
    ids = torch.zeros(b, cfg.encoders["text"].input_shape[0], dtype=torch.long)
    ids[:, 0], ids[:, 1], ids[:, 2] = 49406, 320, 49407
    x["text"] = ids
    return x


@pytest.mark.parametrize("name", list_configs())
def test_every_config_round_trips_and_builds(name):
    cfg = get_config(name)
    again = ImageBindConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with torch.device("meta"):
        model = ImageBind(cfg)
    assert set(model.encoders) == set(bindkit.MODALITIES)


def test_from_official_kwargs_rejects_unknown():
    with pytest.raises(ValueError, match="vision_width"):
        ImageBindConfig.from_official_kwargs({"vision_width": 3})


def test_huge_parameter_count():
    with torch.device("meta"):
        model = ImageBind(get_config("imagebind_huge"))
    assert sum(p.numel() for p in model.parameters()) == 1_200_781_057


def test_output_norms_follow_scales(tiny):
    out = tiny(_inputs(tiny.config))
    for m, y in out.items():
        assert y.shape == (2, tiny.config.out_dim)
        torch.testing.assert_close(y.norm(dim=-1), torch.full((2,), tiny.scale(m)), rtol=1e-5, atol=1e-5)
    enc = tiny.encode(_inputs(tiny.config))
    for y in enc.values():
        torch.testing.assert_close(y.norm(dim=-1), torch.ones(2))


def test_clip_average_then_renormalised(tiny):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2, 3, *tiny.config.encoders["audio"].input_shape, generator=g)
    per_clip = tiny({"audio": a.flatten(0, 1)})["audio"].unflatten(0, (2, 3))
    expected = per_clip.mean(1)  # official: average after scaling, no renormalisation
    torch.testing.assert_close(tiny({"audio": a})["audio"], expected)
    assert (expected.norm(dim=-1) < tiny.scale("audio")).all()
    torch.testing.assert_close(
        tiny.encode({"audio": a})["audio"], expected / expected.norm(dim=-1, keepdim=True)
    )


def test_image_equals_one_frame_video_and_static_clip(tiny):
    x = torch.randn(2, 3, 64, 64)
    img = tiny({"vision": x})["vision"]
    clip = x[:, None, :, None].expand(2, 1, 3, 2, 64, 64).contiguous()  # 6-D, two identical frames
    torch.testing.assert_close(tiny({"video": clip})["video"], img, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "inputs, match",
    [
        ({"smell": torch.zeros(1, 3)}, "unknown modality 'smell'"),
        ({"vision": torch.zeros(1, 1, 64, 64)}, r"vision: expected images \[B,3,H,W\]"),
        ({"vision": torch.zeros(2, 3, 2, 64, 64)}, "a single video must be 6-D"),
        ({"vision": torch.zeros(1, 3, 64, 64, dtype=torch.uint8)}, "floating-point"),
        ({"depth": torch.full((1, 1, 64, 64), float("nan"))}, r"NaN or infinite values in items \[0\]"),
        ({"imu": torch.zeros(1, 6, 2000)}, "series length 2000 differs from the config's 400"),
        ({"imu": torch.zeros(1, 3, 400)}, r"imu: expected \[B,6,400\]"),
        ({"audio": torch.zeros(1, 3, 1, 128, 204)}, "audio: expected"),
        ({"text": torch.zeros(2, 32, dtype=torch.long)}, r"rows \[0, 1\] have no end-of-text token"),
        ({"text": torch.zeros(2, 77, dtype=torch.long)}, r"token ids \[B,32\]"),
        ({"text": torch.zeros(2, 32)}, "integer token ids"),
    ],
)
def test_bad_input_is_rejected_clearly(tiny, inputs, match):
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        tiny(inputs)


def test_bad_input_fails_before_any_compute(tiny, monkeypatch):
    calls = []
    monkeypatch.setattr(tiny.encoders["vision"], "embed_items", lambda *a, **k: calls.append(1))
    with pytest.raises(KeyError):
        tiny({"vision": torch.zeros(1, 3, 64, 64), "smell": torch.zeros(1)})
    assert not calls


def test_pos_embed_interpolates_for_larger_square_inputs(tiny):
    out = tiny({"vision": torch.randn(1, 3, 96, 96), "depth": torch.randn(1, 1, 128, 128)})
    assert out["vision"].shape == out["depth"].shape == (1, tiny.config.out_dim)
    with pytest.raises(ValueError, match="cannot resize"):
        tiny({"vision": torch.randn(1, 3, 64, 128)})


def test_bf16_weights_track_fp32(tiny):
    x = _inputs(tiny.config, b=4)
    ref = tiny.encode(x)
    bf = ImageBind(tiny.config).eval()
    bf.load_state_dict(tiny.state_dict())
    got = bf.to(torch.bfloat16).encode(x)
    for m in ref:
        cos = torch.nn.functional.cosine_similarity(ref[m], got[m]).min().item()
        assert cos > 0.99, (m, cos)


def test_save_load_keeps_preprocess_constants(tiny, tmp_path):
    cfg = tiny.config.replace_encoder("depth", preprocess={"mean": 0.1, "std": 0.2})
    model = ImageBind(cfg)
    bindkit.save_model(model, tmp_path)
    again = bindkit.load_model(tmp_path, modalities=["depth"])
    assert again.config.encoders["depth"].preprocess == {"mean": 0.1, "std": 0.2}
    assert list(again.encoders) == ["depth"]
    with pytest.raises(FileNotFoundError, match="not a bindkit model folder"):
        bindkit.load_model(tmp_path / "nope")


def _copy(tiny, dtype=torch.float32):
    model = ImageBind(tiny.config).eval()
    model.load_state_dict(tiny.state_dict())
    return model.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpu_fast_path_swaps_modules_keeps_state_and_goes_stale_on_change(tiny, dtype):
    from bindkit.runtime.cpu import CPUMLP, CPUAttention, CPULinear, has_fused_linear, unpack_for_cpu

    if not has_fused_linear():
        pytest.skip("this torch build has no oneDNN fused linear")
    x = _inputs(tiny.config, b=3)
    model = _copy(tiny, dtype)
    keys = list(model.state_dict())
    with torch.no_grad():
        ref = model(x)
        assert model.pack_for_cpu(rows=64) is model
        kinds = {type(m) for m in model.modules()}
        assert {CPUAttention, CPUMLP, CPULinear} <= kinds and torch.nn.Linear not in kinds
        assert list(model.state_dict()) == keys  # packed copies are non-persistent buffers: checkpoints unchanged
        got = model(x)  # row counts other than the hint
        for m in ref:
            cos = torch.nn.functional.cosine_similarity(got[m].float(), ref[m].float()).min().item()
            assert cos > (0.999999 if dtype == torch.float32 else 0.9999), (m, cos)
        w = model.encoders["vision"].trunk.blocks[0].mlp.fc1.weight
        w.mul_(-1.5)  # an in-place change (as an optimizer step): the stale pack must not be used
        changed = model({"vision": x["vision"]})["vision"]
        assert unpack_for_cpu(model) > 0 and not any(isinstance(m, CPULinear) for m in model.modules())
        expected = model({"vision": x["vision"]})["vision"]
    cos = torch.nn.functional.cosine_similarity(changed.float(), expected.float()).min().item()
    assert cos > 0.9999 and not torch.allclose(changed.float(), ref["vision"].float(), atol=1e-2)


@pytest.mark.parametrize("packed", [False, True])
def test_autocast_really_runs_bf16_on_an_fp32_model(tiny, packed):
    """Under CPU bf16 autocast every linear of an fp32 model (plain or packed) must produce bf16."""
    model = _copy(tiny).pack_for_cpu(rows=64) if packed else _copy(tiny)
    seen: list[torch.dtype] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype)) for m in model.modules()
             if isinstance(m, torch.nn.Linear) or type(m).__name__ == "CPULinear"]  # fmt: skip
    x = _inputs(tiny.config, b=2)
    with torch.no_grad():
        ref = model(x)
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x)
    for h in hooks:
        h.remove()
    assert seen and set(seen) == {torch.bfloat16}
    for m in ref:
        cos = torch.nn.functional.cosine_similarity(got[m].float(), ref[m]).min().item()
        assert 0.99 < cos and not torch.equal(got[m].float(), ref[m]), (m, cos)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_inference_path_matches_the_plain_autograd_path(tiny, dtype, monkeypatch):
    """Each attention kernel against float64, then the packed no-grad path against the plain modules with grads on."""
    from bindkit.runtime import cpu
    from bindkit.runtime.cpu import KERNELS, attention

    monkeypatch.setattr(cpu, "CHUNK_SCORES", 3 * 9 * 9)  # one item per chunk: the chunk loop runs

    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(2, 3, 9, 16, generator=g) for _ in range(3))
    for causal in (False, True):
        scores = (q.double() @ k.double().transpose(-1, -2)) / 4.0
        if causal:
            scores = scores.masked_fill(torch.ones(9, 9, dtype=torch.bool).triu(1), float("-inf"))
        want = scores.softmax(-1) @ v.double()  # float64 hand computation
        with torch.no_grad():
            for fn in [attention, *KERNELS.values()]:
                got = fn(q.to(dtype), k.to(dtype), v.to(dtype), causal=causal)
                assert torch.allclose(got.double(), want, atol=1e-5 if dtype == torch.float32 else 0.03), fn
    plain, fast = _copy(tiny, dtype), _copy(tiny, dtype).pack_for_cpu(rows=64)
    inputs = _inputs(tiny.config, b=2)
    with torch.enable_grad():
        slow = plain(inputs)
    assert all(y.requires_grad for y in slow.values())  # really the autograd path
    quick = fast.encode(inputs)
    for m in quick:
        ref = torch.nn.functional.normalize(slow[m].detach().float(), dim=-1)
        cos = torch.nn.functional.cosine_similarity(quick[m], ref).min().item()
        assert cos > (0.999999 if dtype == torch.float32 else 0.9999), (m, cos)
