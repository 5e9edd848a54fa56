"""Export to ONNX / OpenVINO and the runtime backends: outputs against PyTorch fp32, caching, and bad input.

Every registry config is exported; `imagebind_small` and `imagebind_huge` keep their widths, heads and input sizes
but only one transformer block per trunk (`_one_block`), so the suite stays quick: every block is the same graph.
"""

import json

import pytest
import torch

import bindkit
from bindkit import ImageBind, get_config, list_configs
from bindkit.runtime import backends, export
from bindkit.runtime.backends import load_exported

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tol(ref: torch.Tensor) -> float:
    return 1e-4 * max(1.0, ref.abs().max().item())


def _inputs(cfg, b=3, seed=1):
    """Random inputs of every layout the PyTorch model takes (images, videos, audio clips, depth sets...)."""
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(b, *e.input_shape, generator=g) for m, e in cfg.encoders.items() if m != "text"}
    if "vision" in cfg.encoders:
        v = cfg.encoders["vision"]
        x["video"] = torch.randn(b, 2, 3, v.kernel[0], *v.input_shape[1:], generator=g)
    if "audio" in cfg.encoders:
        x["audio"] = torch.randn(b, 3, *cfg.encoders["audio"].input_shape, generator=g)  # 3 clips (exported with 2)
    if "text" not in cfg.encoders:
        return x
    ids = torch.randint(1, 49000, (b, cfg.encoders["text"].input_shape[0]), generator=g)
    ids[:, 5] = 49407  # EOT (the largest id) mid-row: pooling must find it
    x["text"] = ids
    return x


def _one_block(name):
    cfg = get_config(name)
    if name in ("imagebind_small", "imagebind_huge"):
        for m in cfg.encoders:
            cfg = cfg.replace_encoder(m, depth=1)
    return cfg


def _random(cfg):
    torch.manual_seed(0)
    model = ImageBind(cfg).eval()
    with torch.no_grad():  # CLIP-like draws so positions and bias tokens matter
        for n, p in model.named_parameters():
            if n.endswith(("pos_embed", "cls_token", "bias_k", "bias_v")):
                p.normal_(0, 0.02)
    return model


def _check(model, runtime, inputs):
    with torch.no_grad():
        ref = model(inputs)
    got = runtime.forward(inputs)
    for m in ref:
        assert got[m].shape == ref[m].shape and got[m].dtype == torch.float32, m
        err = (got[m] - ref[m]).abs().max().item()
        assert err <= _tol(ref[m]), (m, err, _tol(ref[m]))
        assert runtime.scale(m) == pytest.approx(model.scale(m))


@pytest.fixture(scope="module")
def official(fixtures_dir):
    root = fixtures_dir / "model"
    cfg = bindkit.ImageBindConfig.from_official_kwargs(json.loads((root / "config.json").read_text())["kwargs"])
    return bindkit.load_official_checkpoint(root / "checkpoint.pth", config=cfg), root


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_official_fixture_model_exports_to_fixture_parity(official, fmt, tmp_path):
    """Both runtimes on the official fixtures' model and inputs, against PyTorch and the stored official outputs."""
    from safetensors.torch import load_file

    model, root = official
    export.export(model, tmp_path, fmt)
    manifest = json.loads((tmp_path / export.MANIFEST).read_text())
    assert manifest["fingerprint"] == export.fingerprint(model) and set(manifest["encoders"]) == set(model.encoders)
    assert manifest["config"] == json.loads(json.dumps(model.config.to_dict())) and manifest["loader"]["image_mean"][0] == 0.48145466
    cases, t = json.loads((root / "cases.json").read_text())["cases"], load_file(root / "cases.safetensors")
    for backend in ["openvino"] + (["onnxruntime"] if fmt == "onnx" else []):
        runtime = load_exported(tmp_path, backend)
        for case, mc in cases.items():
            x, ref = t[f"{case}.input"], t[f"{case}.output"]
            got = runtime.forward({mc["modality"]: x})[mc["modality"]]
            assert (got - ref).abs().max().item() <= _tol(ref), (backend, case)
        _check(model, runtime, {"video": _inputs(model.config)["video"], "text": _inputs(model.config)["text"]})


@pytest.mark.parametrize("name", list_configs())
def test_every_registry_config_matches_pytorch_on_both_runtimes(name, tmp_path):
    model = _random(_one_block(name))
    export.export(model, tmp_path, "onnx")
    inputs = _inputs(model.config, b=2)
    for backend in ("onnxruntime", "openvino"):
        runtime = load_exported(tmp_path, backend)
        _check(model, runtime, inputs)
        assert torch.allclose(runtime.encode(inputs)["depth"].norm(dim=-1), torch.ones(2))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-model")
    bindkit.save_model(_random(get_config("imagebind_tiny")), folder)
    return folder


def test_load_model_backend_compiles_once_into_the_cache(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    real = backends.export
    monkeypatch.setattr(backends, "export", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    torch_model = bindkit.load_model(tiny_folder, modalities=["text", "depth"])
    first = bindkit.load_model(tiny_folder, modalities=["text", "depth"], backend="onnxruntime")
    assert sorted(m for [m] in calls) == ["depth", "text"]
    _check(torch_model, first, {k: v for k, v in _inputs(torch_model.config).items() if k in ("text", "depth")})
    again = bindkit.load_model(tiny_folder, modalities=["depth"], backend="onnxruntime")
    assert len(calls) == 2 and again.folder == first.folder  # the second start reads the cache
    assert first.folder.parent == tmp_path / "bindkit" / "compiled" and "onnxruntime" in first.folder.name
    ov = bindkit.load_model(tiny_folder, modalities=["imu"], backend="openvino")
    assert ov.folder != first.folder and (tmp_path / "bindkit" / "ov_blobs").is_dir()


def test_bad_inputs_get_clear_errors(tiny_folder, tmp_path, monkeypatch):
    tiny = bindkit.load_model(tiny_folder)
    out = export.export(tiny, tmp_path / "e", "onnx", modalities=["depth"])
    runtime = load_exported(out, "onnxruntime")
    with pytest.raises(KeyError, match=r"no exported \['audio'\] encoder"):
        load_exported(out, "onnxruntime", modalities=["audio"])
    with pytest.raises(KeyError, match="was not exported"):
        runtime.forward({"audio": torch.zeros(1, 1, 64, 104)})
    with pytest.raises(ValueError, match="depth"):  # the PyTorch stem's own checks run first
        runtime.forward({"depth": torch.zeros(1, 3, 64, 64)})
    other = _random(get_config("imagebind_tiny").select(["depth"]))
    with torch.no_grad():
        next(other.parameters()).add_(1)
    with pytest.raises(ValueError, match="another model"):
        export.export(other, out, "onnx", modalities=["depth"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bindkit.save_model(other, tmp_path / "other")
    with pytest.raises(ValueError, match="another model"):  # a model folder pointed at another model's export
        backends.load_runtime_model(tmp_path / "other", "onnxruntime", ["depth"], exported=out)
    with pytest.raises(ValueError, match="ONNX export is fp32 only"):
        export.export(tiny, tmp_path / "f", "onnx", precision="int8")
    with pytest.raises(ValueError, match="exported model"):
        bindkit.load_model(out)


def test_missing_runtime_names_the_extra(monkeypatch):
    import importlib

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda n, *a: (_ for _ in ()).throw(ImportError(n)) if n == "openvino" else real(n, *a))
    with pytest.raises(ImportError, match=r"openvino is not installed.*bindkit\[runtime\]"):
        backends.runtime_version("openvino")


def test_int8_export_is_close_to_fp32_and_refuses_a_short_calibration_set(tmp_path):
    model = _random(get_config("imagebind_tiny").select(["depth"]))
    with pytest.raises(ValueError, match="has 16 items, fewer than the 32 asked"):
        export.export(model, tmp_path / "short", "openvino", precision="int8", calibration_items=32,
                      calibration=lambda m: [torch.randn(16, 1, 1, 64, 64)])  # fmt: skip
    g = torch.Generator().manual_seed(5)  # calibrated on the distribution it is then run on
    out = export.export(model, tmp_path / "q", "openvino", precision="int8", calibration_items=32,
                        calibration=lambda m: [torch.randn(20, 1, 1, 64, 64, generator=g) for _ in range(2)])
    int8_users = _int8_users(out / "depth.xml")
    assert {n for n in int8_users if "/trunk/" in n} >= {f"/trunk/blocks.{i}/mlp/fc1/MatMul" for i in range(4)}
    assert all("/trunk/" in n for n in int8_users), int8_users  # the stem's conv and the head stay bf16
    x = _inputs(model.config)["depth"]
    got = load_exported(out, "openvino").encode({"depth": x})["depth"]
    cos = torch.nn.functional.cosine_similarity(got, model.encode({"depth": x})["depth"]).min().item()
    assert 0.98 < cos < 1.0 - 1e-7, cos


def _int8_users(xml) -> set[str]:
    """Names of the MatMul/Convolution nodes fed (within a few hops) by an int8 weight or a FakeQuantize."""
    import openvino as ov

    def users(n):
        return [t.get_node() for o in n.outputs() for t in o.get_target_inputs()]

    found: set[str] = set()
    for op in ov.Core().read_model(str(xml)).get_ordered_ops():
        kind = op.get_type_name()
        if kind != "FakeQuantize" and not (kind == "Constant" and op.get_element_type() == ov.Type.i8):
            continue
        frontier = [op]
        for _ in range(5):  # Convert -> Subtract -> Multiply -> MatMul, or FakeQuantize -> (Reshape) -> MatMul
            frontier = [u for f in frontier for u in users(f)]
            found |= {u.get_friendly_name() for u in frontier if u.get_type_name() in ("MatMul", "Convolution")}
            frontier = [u for u in frontier if u.get_type_name() not in ("MatMul", "Convolution")]
    return found


def test_world_calibration_gives_graph_layout_batches_of_the_asked_count():
    from bindkit.runtime.quantize import world_calibration

    model = _random(get_config("imagebind_tiny").select(["audio", "text"]))
    for m, shape in [("audio", (1, 1, 64, 104)), ("text", (32,))]:
        batches = world_calibration(model, 10)(m)
        assert sum(len(b) for b in batches) == 10 and tuple(batches[0].shape[1:]) == shape


def test_cli_export_and_search_with_a_backend_find_what_torch_finds(tmp_path_factory, monkeypatch, capsys):
    """`bindkit export` writes the asked-for encoders; `bindkit search --backend` searches the torch-built store."""
    from bindkit.cli import main
    from bindkit.store import search
    from store_fixtures import shared_world

    world = shared_world(tmp_path_factory)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    out = tmp_path_factory.mktemp("export") / "e"
    main(["export", str(world["model_dir"]), str(out), "--format", "onnx", "--modalities", "text", "audio"])
    manifest = json.loads((out / export.MANIFEST).read_text())
    assert sorted(manifest["encoders"]) == ["audio", "text"] and manifest["store_key"]
    capsys.readouterr()
    main(["search", "--store", str(world["db"]), "--model", str(world["model_dir"]), "--text", "a dog", "-k", "4",
          "--backend", "onnxruntime"])  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    hits = search(world["db"], world["model"], [("text", "a dog", 1.0)], k=4)
    assert [line.split()[-1] for line in lines] == [str(h.path) for h in hits]
    ours = [float(line.split()[0]) for line in lines]
    assert ours == pytest.approx([h.score for h in hits], abs=1e-4)
    exported = search(world["db"], out, [("text", "a dog", 1.0)], k=4, backend="onnxruntime")  # the export folder itself
    assert [h.path for h in exported] == [h.path for h in hits]
