"""Dense embeddings, heatmap boxes, `locate` and its bad-input errors (tiny random models; the trained check uses
the session's quick demo run)."""

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bindkit.apps import QueryEmbedding, boxes_from_heatmap, locate
from bindkit.apps.boxes import components
from bindkit.model import ImageBind
from bindkit.registry import get_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = ImageBind(get_config("imagebind_tiny").select(["vision", "text", "audio"])).eval()
    with torch.no_grad():  # non-trivial positions and CLS, so a wrong token order would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def slow_value_path(model, images):
    """Per-patch re-derivation: the last block's input from the trace, then value -> out_proj -> norm -> proj."""
    enc = model.encoder("vision")
    trace: dict = {}
    enc.embed_items(images, trace)
    x = trace["keep"][-2]  # input of the last block (N, L, D)
    last, D = enc.trunk.blocks[-1], x.shape[-1]
    W, b = last.attn.in_proj_weight[2 * D :], last.attn.in_proj_bias[2 * D :]
    n, L = x.shape[:2]
    side = int(round((L - 1) ** 0.5))
    out = torch.empty(n, side, side, enc.cfg.out_dim)
    for i in range(n):
        for t in range(1, L):
            h = F.layer_norm(x[i, t], (D,), last.norm1.weight, last.norm1.bias, 1e-6)
            y = last.attn.out_proj.weight @ (W @ h + b) + last.attn.out_proj.bias
            z = enc.head.proj.weight @ F.layer_norm(y, (D,), enc.head.norm.weight, enc.head.norm.bias, 1e-6)
            out[i, (t - 1) // side, (t - 1) % side] = z / z.norm()
    return out


@pytest.mark.parametrize("size", [64, 96])
def test_encode_dense_matches_a_slow_per_patch_reference(tiny, size):
    torch.manual_seed(1)
    images = torch.randn(2, 3, size, size)
    dense = tiny.encode_dense(images)
    side = (size - 8) // 8 + 1
    assert dense.shape == (2, side, side, 128) and dense.dtype == torch.float32
    with torch.no_grad():
        ref = slow_value_path(tiny, images)
    torch.testing.assert_close(dense, ref, atol=2e-5, rtol=1e-4)


def test_encode_dense_bf16_stays_close_to_fp32(tiny):
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ref = tiny.encode_dense(images)
    bf = ImageBind(tiny.config).eval()
    bf.load_state_dict(tiny.state_dict())
    got = bf.to(torch.bfloat16).encode_dense(images)
    cos = (got * ref).sum(-1)
    assert float(cos.min()) > 0.999


def test_dense_global_output_is_the_ordinary_embedding(tiny):
    from bindkit.dense import dense_embeddings

    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    out = dense_embeddings(tiny.encoder("vision"), images)
    torch.testing.assert_close(out.embedding, tiny.encode({"vision": images})["vision"], atol=1e-5, rtol=1e-5)


def test_components_and_boxes_on_hand_made_heatmaps():
    heat = np.zeros((20, 30), np.float32)
    heat[2:6, 3:9] = 1.0  # a 4 x 6 block at full height
    heat[4, 5] = 1.5  # its peak
    heat[10:18, 20:25] = 0.8  # a second block, lower
    heat[15, 2] = 0.9  # a single pixel, kept only when min_pixels allows
    boxes = boxes_from_heatmap(heat, threshold=0.5)
    assert [b.xyxy for b in boxes] == [(3, 2, 9, 6), (2, 15, 3, 16), (20, 10, 25, 18)]
    assert boxes[0].score == pytest.approx(1.5) and boxes[0].peak == (5, 4)
    assert [b.xyxy for b in boxes_from_heatmap(heat, 0.5, min_pixels=2)] == [(3, 2, 9, 6), (20, 10, 25, 18)]
    assert [b.xyxy for b in boxes_from_heatmap(heat, 0.6)] == [(3, 2, 9, 6), (2, 15, 3, 16)]  # 0.8 < 0.9 cut
    # diagonal neighbours are separate components (4-connectivity); a U shape is one
    diag = np.array([[1, 0], [0, 1]], bool)
    assert components(diag).max() == 2
    u = np.array([[1, 0, 1], [1, 0, 1], [1, 1, 1]], bool)
    assert components(u).max() == 1
    assert [b.xyxy for b in boxes_from_heatmap(np.ones((4, 5)), 0.5)] == [(0, 0, 5, 4)]


def test_grid_peak_is_the_best_patch_centre_even_on_the_border():
    """Hand-made grids: the peak is the best patch's centre in image pixels. On a border patch the pixel heatmap
    is flat out to the image's edge (to_pixels holds edge values), so its first argmax is the corner, not the peak."""
    from bindkit.apps.locate import grid_peak, to_pixels

    g = torch.zeros(9, 9)
    g[0, 0] = 1.0  # crops of 32 px at stride 4 on a 64-px model view of a 128-px canvas
    assert grid_peak(g, 32, 4, 64, 128, 128) == (32, 32)  # crop (0, 0) covers model px 0..32: centre 16 -> 32
    heat = to_pixels(g, 32, 4, 64, 128, 128)
    assert np.unravel_index(int(np.argmax(heat)), heat.shape) == (0, 0)  # the flat corner
    g = torch.zeros(8, 8)
    g[2, 5] = 1.0  # 8-px patches at stride 8, 64-px model view of a 32 x 64 (H x W) image
    assert grid_peak(g, 8, 8, 64, 32, 64) == (44, 10)


def test_locate_heatmap_follows_the_patch_map(tiny, tmp_path):
    """A query equal to one patch's dense embedding peaks on that patch's pixels."""
    from PIL import Image

    rng = np.random.default_rng(4)
    img = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    from bindkit.apps.locate import to_tensor

    dense = tiny.encode_dense(to_tensor([img], 64))[0]  # (8, 8, D)
    q = dense[2, 5].numpy()
    found = locate(tiny, [img], q)[0]
    assert found.heatmap.shape == (64, 64)
    assert found.grid[2, 5] == pytest.approx(1.0, abs=1e-5)
    x, y = found.peak
    assert 5 * 8 <= x < 6 * 8 and 2 * 8 <= y < 3 * 8  # inside patch (row 2, column 5)
    assert any(b.x0 <= x < b.x1 and b.y0 <= y < b.y1 for b in found.boxes)


def test_bad_inputs_fail_before_compute(tiny, tmp_path, monkeypatch):
    import importlib

    from PIL import Image

    from bindkit.apps.query import model_fingerprint

    def no_compute(*a, **k):
        raise AssertionError("computed before rejecting the input")

    loc = importlib.import_module("bindkit.apps.locate")  # the module, not the function of the same name
    monkeypatch.setattr(loc, "dense_embeddings", no_compute)
    img = Image.new("RGB", (64, 64))
    with pytest.raises(ValueError, match="another model"):
        locate(tiny, [img], np.ones(64, np.float32))
    with pytest.raises(ValueError, match="made by model other-123"):
        locate(tiny, [img], QueryEmbedding(np.ones(128, np.float32), "other-123"))
    with pytest.raises(ValueError, match="smaller than one 8x8 patch"):
        locate(tiny, [Image.new("RGB", (5, 40))], "seven")
    with pytest.raises(ValueError, match="smaller than one 8x8 patch"):
        tiny.encode_dense(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="needs a vision encoder"):
        ImageBind(get_config("imagebind_tiny").select(["audio"])).encode_dense(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="needs a vision encoder"):
        from bindkit.dense import dense_embeddings

        dense_embeddings(tiny.encoder("audio"), torch.zeros(1, 3, 64, 64))
    ok = QueryEmbedding(np.ones(128, np.float32), model_fingerprint(tiny))
    monkeypatch.undo()
    assert locate(tiny, [img], ok)[0].heatmap.shape == (64, 64)


def test_one_query_type_checks_every_term_before_embedding_any(tiny, tmp_path, monkeypatch):
    """locate, detect and generate share `embed_query`: weighted terms are arithmetic, and a bad term anywhere in the
    list is refused before the first term is embedded."""
    import importlib

    from bindkit.apps.query import Embedding, embed_query, model_fingerprint

    assert Embedding is QueryEmbedding  # one type under both names
    a, b = embed_query(tiny, "a cat"), embed_query(tiny, "the sea")
    assert a.model_key == model_fingerprint(tiny) and float(a.vector.norm()) == pytest.approx(1.0, abs=1e-6)
    mix = embed_query(tiny, [("text", "a cat", 1.0), ("text", "the sea", -0.5)]).vector
    want = a.vector - 0.5 * b.vector
    torch.testing.assert_close(mix, want / want.norm())
    from bindkit.data import tokenize

    with torch.no_grad():
        raw = tiny.encode({"text": tokenize(["a cat"], tiny.config.encoders["text"].input_shape[-1])})["text"][0].numpy()
    torch.testing.assert_close(a.vector, torch.from_numpy(raw / np.linalg.norm(raw)).float(), atol=1e-6, rtol=0)

    def no_compute(*args, **kwargs):
        raise AssertionError("embedded a term before checking them all")

    search = importlib.import_module("bindkit.store.search")  # the module, not the function of the same name
    monkeypatch.setattr(search, "embed_term", no_compute)
    with pytest.raises(ValueError, match="width 64 does not match"):
        embed_query(tiny, [("text", "a cat", 1.0), ("vector", np.ones(64, np.float32), 1.0)])
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        embed_query(tiny, [("text", "a cat", 1.0), ("audio", tmp_path / "missing.wav", 1.0)])
    with pytest.raises(ValueError, match="made by model other-1"):
        embed_query(tiny, [("text", "a cat", 1.0), ("embedding", QueryEmbedding(np.ones(128, np.float32), "other-1"))])
    with pytest.raises(ValueError, match="unknown query kind"):
        embed_query(tiny, [("text", "a cat", 1.0), ("smell", "x", 1.0)])
    with pytest.raises(ValueError, match="non-empty"):
        embed_query(tiny, [("vector", np.ones(128, np.float32), 1.0), ("text", "  ", 1.0)])


def test_locate_cli_writes_nothing_on_bad_input_and_both_files_otherwise(tiny, tmp_path, capsys):
    from PIL import Image

    from bindkit.checkpoint import save_model
    from bindkit.cli import main

    model_dir = save_model(tiny, tmp_path / "model")
    Image.new("RGB", (6, 6)).save(tmp_path / "small.png")
    Image.fromarray(np.random.default_rng(5).integers(0, 255, (80, 64, 3), np.uint8)).save(tmp_path / "ok.png")
    with pytest.raises(SystemExit):  # the CLI turns the library's ValueError into one line on stderr
        main(["locate", "--model", str(model_dir), "--image", str(tmp_path / "small.png"), "--text", "a seven",
              "--out", str(tmp_path / "bad")])  # fmt: skip
    assert "smaller than one" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    main(["locate", "--model", str(model_dir), "--image", str(tmp_path / "ok.png"), "--text", "a seven",
          "--out", str(tmp_path / "out")])  # fmt: skip
    answer = json.loads((tmp_path / "out" / "ok.locate.json").read_text())
    assert (answer["width"], answer["height"]) == (64, 80) and answer["boxes"]
    assert Image.open(tmp_path / "out" / "ok.locate.png").size[0] >= 64


def test_quick_demo_scenes_point_clearly_above_chance(quick_demo, tmp_path):
    """The quick demo's model, held-out 3-digit scenes: text and (emergent) audio queries point at the queried digit
    well above chance (the digit's share of the canvas; measured 27% text, 18% audio vs 6% on 100 scenes)."""
    from bindkit.demo.apps_locate import LocateSettings, locate_stage

    run = tmp_path / "run"  # a copy: the shared quick run stays as the demo wrote it for the other tests
    shutil.copytree(quick_demo.run_dir, run, ignore=shutil.ignore_patterns("train"))
    out = locate_stage(run, LocateSettings(n_scenes=80))
    p = out["pointing"]
    assert out["chance"] < 10 and out["methods_text"][out["method"]] == p["text"]
    from bindkit.dense import METHODS  # chosen on train-writer scenes, not on the scored ones

    assert set(out["methods_val"]) == set(METHODS) and out["n_val"] == 100
    assert out["method"] == max(out["methods_val"], key=out["methods_val"].get)
    assert out["methods_val"] != out["methods_text"]  # another set of scenes
    assert p["text"] > 2.5 * out["chance"] and p["audio"] > 1.8 * out["chance"], (p, out["chance"])
    assert (run / out["figure"]).is_file()


def test_crops_method_embeds_each_crop_whole(tiny):
    """`crops`: cell (i, j) is the ordinary embedding of the input-sized crop at (i, j) * stride."""
    from bindkit.dense import dense_embeddings

    x = torch.randn(1, 3, 80, 80, generator=torch.Generator().manual_seed(6))
    out = dense_embeddings(tiny.encoder("vision"), x, "crops")
    assert (out.patch, out.stride) == (64, 8) and out.dense.shape[1:3] == (3, 3)
    crop = x[:, :, 8:72, 16:80]  # row 1, column 2
    torch.testing.assert_close(out.dense[0, 1, 2], tiny.encode({"vision": crop})["vision"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.embedding, tiny.encode({"vision": x})["vision"], atol=1e-5, rtol=1e-5)


def test_method_choice_scores_every_method_on_train_writers_only(tiny, monkeypatch):
    """`choose_method` scores every dense method on scenes whose writers are all train writers."""
    from bindkit.demo import apps_locate
    from bindkit.dense import METHODS
    from bindkit.worlds import DigitsWorld

    seen = []
    real = apps_locate.sample_scenes
    monkeypatch.setattr(apps_locate, "sample_scenes", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    text = (F.normalize(torch.randn(10, tiny.config.out_dim), dim=-1), np.arange(10))
    got = apps_locate.choose_method(tiny, text, 0, apps_locate.LocateSettings(n_val=3))
    assert set(got) == set(METHODS) and all(0 <= v <= 100 for v in got.values())
    train = set(DigitsWorld(seed=0).writers("train").tolist())
    assert len(seen) == 1 and len(seen[0]) == 3 and seen[0].split == "train"
    assert all(set(w.tolist()) <= train for w in seen[0].writers)


def test_method_sentence_says_where_the_method_was_chosen():
    """The report names the validation scenes, or, for a report.json from before them, the scored scenes."""
    from bindkit.demo.apps_locate import _method_line

    old = {"method": "crops", "methods_text": {"value": 20.8, "crops": 93.8}}
    new = old | {"methods_val": {"value": 18.7, "crops": 96.0}, "n_val": 100}
    assert "chosen by text-query pointing on the scored scenes: **crops**" in _method_line(old)
    line = _method_line(new)
    assert "on 100 scenes of train writers (value 18.7%, crops 96.0%): **crops**" in line
    assert line.endswith("on the scored scenes above: value 20.8%, crops 93.8%.")
