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


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_weights_give_the_same_outputs_and_go_stale_on_change(tiny, dtype):
    from bindkit.layers import linear_weights, unpack_linear_weights

    x = _inputs(tiny.config, b=3)
    model = ImageBind(tiny.config).eval()
    model.load_state_dict(tiny.state_dict())
    model.to(dtype)
    with torch.no_grad():
        ref = model(x)
        assert model.pack_for_cpu(rows=64) is model
        n = sum(hasattr(w, "_bindkit_packed") for w in linear_weights(model))
        assert n == len(linear_weights(model)) > 0 or not torch.backends.mkldnn.is_available()
        got = model(x)  # row counts other than the hint stay exact
        for m in ref:
            assert torch.equal(got[m], ref[m]), m
        w = linear_weights(model.encoders["vision"])[0]
        w.mul_(-1.5)  # an in-place change (as an optimizer step): the stale pack must not be used
        changed = model({"vision": x["vision"]})["vision"]
        unpack_linear_weights(model)
        expected = model({"vision": x["vision"]})["vision"]
    assert torch.equal(changed, expected) and not torch.allclose(changed, ref["vision"])
    assert "_bindkit_packed" not in str(model.state_dict().keys())  # packs never reach checkpoints


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_inference_path_matches_the_autograd_path(tiny, dtype):
    """Inference fuses bias and GELU into oneDNN calls; grad mode runs plain F.linear and F.gelu."""
    from bindkit.layers import linear

    g = torch.Generator().manual_seed(2)
    x, w, b = (torch.randn(*s, generator=g, dtype=dtype) for s in [(3, 7, 32), (48, 32), (48,)])
    with torch.no_grad():
        fused = linear(x, w, b, gelu=True)
    plain = torch.nn.functional.gelu(x.double() @ w.double().T + b.double())
    tol = 1e-5 if dtype == torch.float32 else 0.05
    assert torch.allclose(fused.double(), plain, atol=tol, rtol=tol)
    model = ImageBind(tiny.config).eval().to(dtype)
    model.load_state_dict(tiny.state_dict())
    inputs = _inputs(tiny.config, b=2)
    with torch.no_grad():
        fast = model.encode(inputs)
    with torch.enable_grad():
        slow = model.encode(inputs)
    for m in fast:
        cos = torch.nn.functional.cosine_similarity(fast[m].float(), slow[m].detach().float()).min().item()
        assert cos > (0.999999 if dtype == torch.float32 else 0.999), (m, cos)
