"""A seventh modality registered at runtime from one file (tests/pressure_modality.py) plus config entries: it is
detected, loaded, embedded, stored, searched, trained and served without any other source file knowing it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from PIL import Image

import pressure_modality as pm
from bindkit import ImageBind, ImageBindConfig, get_config, modalities, registry
from bindkit.data import load
from bindkit.serve.app import create_app
from bindkit.store import detect_modality, embed_paths
from bindkit.store.search import search
from bindkit.train import PairConfig, TrainConfig, train

LENGTH = 64


def pressure_config() -> ImageBindConfig:
    """The config entries: imagebind_tiny's vision and text encoders plus a small pressure encoder."""
    cfg = get_config("imagebind_tiny").select(["vision", "text"])
    enc = {**cfg.encoders, "pressure": pm.pressure_encoder(cfg.out_dim, LENGTH)}
    return dataclasses.replace(cfg, name="pressure_tiny", encoders=enc)


@pytest.fixture
def pressure(monkeypatch):
    modalities.register(pm.PRESSURE)
    monkeypatch.setitem(registry._REGISTRY, "pressure_tiny", pressure_config)
    yield pm
    modalities.unregister("pressure")


def series(i: int) -> np.ndarray:
    """Item i's signal: a sine whose frequency and phase follow i, of varying length (resampled by the loader)."""
    n = 80 + 7 * i
    return 3 + 2 * np.sin(np.linspace(0, (1 + i) * np.pi, n) + i)


def files(root, n: int = 12):
    """n pressure files (every third a one-column CSV with a header), and a paired image each."""
    (root / "pressure").mkdir()
    (root / "images").mkdir()
    rows, paths = [], []
    for i in range(n):
        p = root / "pressure" / (f"{i}.csv" if i % 3 == 0 else f"{i}.npy")
        if p.suffix == ".csv":
            p.write_text("hPa\n" + "\n".join(f"{v:.6f}" for v in series(i)))
        else:
            np.save(p, series(i))
        img = np.full((64, 64, 3), 20 * (i % 4), np.uint8) + np.random.default_rng(i).integers(
            0, 30, (64, 64, 3), dtype=np.uint8
        )
        Image.fromarray(img).save(root / "images" / f"{i}.png")
        rows.append({"image": f"images/{i}.png", "pressure": p.relative_to(root).as_posix()})
        paths.append(p)
    (root / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


def resampled(i: int, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    x = series(i)
    x = np.round(x, 6) if i % 3 == 0 else x  # the CSV holds 6 decimals
    return (np.interp(np.linspace(0, len(x) - 1, LENGTH), np.arange(len(x)), x) - mean) / std


def test_detect_and_embed(pressure, tmp_path, one_torch_thread):
    paths = files(tmp_path, 4)
    assert detect_modality(paths[0]) == "pressure"  # .csv under pressure/: the hint word picks it
    np.save(tmp_path / "loose.npy", series(1))
    np.save(tmp_path / "six.npy", np.zeros((6, 50)))
    assert detect_modality(tmp_path / "loose.npy") == "pressure"  # 1-D array: the pressure sniffer claims it
    assert detect_modality(tmp_path / "six.npy") == "imu"  # the built-in rules are untouched
    torch.manual_seed(0)
    model = ImageBind(pressure_config()).eval()
    x = load("pressure", paths, model.config)
    np.testing.assert_allclose(x[:, 0].numpy(), np.stack([resampled(i) for i in range(4)]), rtol=1e-6)
    trace: dict = {}
    enc = model.encoders["pressure"]
    with torch.no_grad():
        enc.embed_items(x, trace)
    w = enc.stem.proj.weight[:, 0].double()  # (D, k): tokens are windows of k samples @ W^T, then LN, + pos
    windows = torch.from_numpy(resampled(1)).reshape(LENGTH // 8, 8)
    want = F.layer_norm((windows @ w.T).float(), (32,), enc.stem.norm.weight, enc.stem.norm.bias, 1e-5)
    want = want + enc.stem.prefix.pos_embed[0, 1:]
    torch.testing.assert_close(trace["tokens"][1, 1:], want, atol=1e-4, rtol=1e-4)
    assert trace["tokens"].shape == (4, LENGTH // 8 + 1, 32)  # CLS + 8 patches: config.grid's patch rule
    emb = model.encode({"pressure": x})["pressure"]
    assert emb.shape == (4, 128) and torch.allclose(emb.norm(dim=-1), torch.ones(4))


def test_store_train_serve(pressure, tmp_path, one_torch_thread):
    paths = files(tmp_path)
    torch.manual_seed(0)
    model = ImageBind(pressure_config()).eval()
    report = embed_paths([tmp_path / "pressure"], tmp_path / "store", model, progress=False)
    assert report.embedded == len(paths) and not report.failed and not report.skipped
    hits = search(tmp_path / "store", model, [("pressure", paths[4], 1.0)], modalities=["pressure"], k=3)
    assert (
        hits[0].path == str(paths[4])
        and hits[0].modality == "pressure"
        and hits[0].score == pytest.approx(1, abs=1e-4)
    )

    cfg = TrainConfig(model="pressure_tiny", pairs=[PairConfig(("vision", "pressure"), str(tmp_path / "pairs.jsonl"),
                      batch_size=6, temperature=0.2, lr=1e-3)], steps=3, warmup_steps=1, checkpoint_every=100,
                      progress=False, run_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))  # fmt: skip
    result = train(cfg)
    assert result.step == 3 and result.model_dir is not None
    assert np.isfinite(result.metrics["vision-pressure"]["loss"])
    pre = json.loads((result.model_dir / "config.json").read_text())["encoders"]["pressure"]["preprocess"]
    raw = np.stack([resampled(i) for i in range(len(paths))])  # the fitter saw every training series
    assert pre["mean"] == pytest.approx(raw.mean(), rel=1e-6) and pre["std"] == pytest.approx(
        raw.std(), rel=1e-4
    )

    embed_paths([tmp_path / "pressure"], tmp_path / "store2", result.model_dir, progress=False)
    client = TestClient(create_app(result.model_dir, tmp_path / "store2"), base_url="http://localhost")
    kinds = {k["name"]: k for k in client.get("/kinds").json()}
    assert kinds["pressure"]["extensions"] == [".npy", ".csv"] and kinds["pressure"]["embeds"]
    assert client.get("/health").json()["kinds"] == {"pressure": len(paths)}
    upload = {"file": ("query.npy", paths[4].read_bytes(), "application/octet-stream")}
    top = client.post("/search", files=upload, data={"k": "2"}).json()  # detected: a 1-D array
    assert top["query"][0]["kind"] == "pressure" and top["results"][0]["name"] == paths[4].name
    thumb = client.get(top["results"][0]["thumb"])
    assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
    locked = TestClient(
        create_app(result.model_dir, tmp_path / "store2", token="t0k"), base_url="http://localhost"
    )
    assert locked.get("/kinds").status_code == 200  # the page builds its menus before it has the token
    assert locked.post("/search", data={"text": "x"}).status_code == 401
