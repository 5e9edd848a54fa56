"""The HTTP service through FastAPI's test client: embed, search, items and previews, uploads, tokens, binding."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from store_fixtures import shared_world

pytest.importorskip("fastapi")
pytest.importorskip("lancedb")

from fastapi.testclient import TestClient  # noqa: E402

from bindkit.serve import create_app, serve  # noqa: E402
from bindkit.serve.server import check_binding, is_loopback  # noqa: E402
from bindkit.store import Store  # noqa: E402
from bindkit.store.store import item_id  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    w = shared_world(tmp_path_factory)
    client = TestClient(create_app(w["model"], w["db"]), base_url="http://localhost")
    rows = {
        r["path"]: r
        for r in Store.for_model(w["db"], w["model"]).rows(columns=("path", "vector")).to_pylist()
    }
    return dict(w, client=client, rows=rows)


def upload(path: Path, name: str | None = None, data: bytes | None = None):
    return {"file": (name or path.name, data if data is not None else path.read_bytes())}


def test_health_and_schema(env):
    h = env["client"].get("/health").json()
    assert h["status"] == "ok" and h["items"] == 14 and h["model"] == "imagebind_tiny"
    assert h["kinds"] == {k: 2 for k in ("image", "video", "text", "audio", "depth", "thermal", "imu")}
    schema = env["client"].get("/openapi.json").json()
    assert {"/embed", "/search", "/items/{id}", "/health"} <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    page = env["client"].get("/")
    assert page.status_code == 200 and 'id="drop-zone"' in page.text
    assert env["client"].get("/static/app.js").status_code == 200


def test_embed_text_and_file(env):
    from bindkit.data import tokenize

    c, m = env["client"], env["model"]
    out = c.post("/embed", data={"text": "a red square"}).json()
    want = m.encode({"text": tokenize(["a red square"], context_length=32)})["text"][0].numpy()
    assert out["modality"] == "text" and out["dim"] == 128
    np.testing.assert_allclose(out["vector"], want, atol=1e-5)
    wav = env["media"]["audio"][0]
    out = c.post("/embed", files=upload(wav)).json()
    assert out["modality"] == "audio"
    np.testing.assert_allclose(out["vector"], env["rows"][str(wav)]["vector"], atol=1e-5)
    assert c.post("/embed").status_code == 400


def test_search_by_upload_finds_the_same_item(env):
    c, media = env["client"], env["media"]
    for kind in ("image", "depth", "imu", "video"):
        f = media[kind][1]
        res = c.post("/search", files=upload(f), data={"k": "3"}).json()
        top = res["results"][0]
        assert top["id"] == item_id(str(f)) and top["score"] == pytest.approx(1.0, abs=1e-4), kind
        assert res["query"] == [{"kind": kind, "weight": 1.0}]
    thermal = media["thermal"][0]
    r = c.post("/search", files=upload(thermal, "heat.png"))
    assert r.status_code == 400 and "ambiguous" in r.json()["detail"]  # a 16-bit PNG: depth or thermal?
    r = c.post("/search", files=upload(thermal, "heat.png"), data={"modality": "thermal"}).json()
    assert r["results"][0]["id"] == item_id(str(thermal))


def test_search_groups_filters_and_arithmetic(env):
    c, rows = env["client"], env["rows"]
    res = c.post("/search", data={"text": "a fast walk", "group": "true", "k": "1"}).json()["results"]
    assert sorted(r["modality"] for r in res) == sorted(
        ["image", "video", "text", "audio", "depth", "thermal", "imu"]
    )
    res = c.post("/search", data={"text": "x", "modalities": "depth,imu", "k": "10"}).json()["results"]
    assert len(res) == 4 and {r["modality"] for r in res} == {"depth", "imu"}
    # arithmetic: 2 * text - 0.5 * stored item, ranked as numpy ranks it
    img = str(env["media"]["image"][0])
    out = c.post("/search", data={"text": "rain", "text_weight": "2", "item": item_id(img), "item_weight": "-0.5",
                                  "k": "14"}).json()  # fmt: skip
    t = np.asarray(c.post("/embed", data={"text": "rain"}).json()["vector"])
    q = 2 * t - 0.5 * np.asarray(rows[img]["vector"])
    q /= np.linalg.norm(q)
    paths = list(rows)
    scores = np.stack([rows[p]["vector"] for p in paths]) @ q
    assert [r["id"] for r in out["results"]] == [item_id(paths[i]) for i in np.argsort(-scores)]
    np.testing.assert_allclose([r["score"] for r in out["results"]], np.sort(scores)[::-1], atol=1e-4)
    assert c.post("/search", data={"text": "x", "modalities": "smell"}).status_code == 400
    assert c.post("/search", data={"text": "x", "k": "1000"}).status_code == 422
    assert c.post("/search", data={"item": "nope"}).status_code == 400


def test_items_and_previews(env):
    c, media = env["client"], env["media"]
    f = media["audio"][0]
    r = c.get(f"/items/{item_id(str(f))}")
    assert (
        r.status_code == 200
        and r.content == f.read_bytes()
        and r.headers["content-type"].startswith("audio/")
    )
    for kind in ("image", "video", "audio", "depth", "thermal", "imu"):
        r = c.get(f"/items/{item_id(str(media[kind][0]))}", params={"thumb": "true"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", kind
        img = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
        assert max(img.shape[:2]) <= 220 and img.std() > 5, kind  # a real picture, not a blank
        if kind in ("depth", "thermal"):  # colour-mapped: the channels differ
            assert np.abs(img[..., 0] - img[..., 2]).mean() > 5, kind
    text = media["text"][1]
    assert c.get(f"/items/{item_id(str(text))}", params={"thumb": "true"}).text == text.read_text()
    assert c.get("/items/0000000000000000").status_code == 404


def test_uploads_are_checked_and_cleaned(env, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    app = create_app(env["model"], env["db"], max_upload_bytes=50_000)
    c = TestClient(app, base_url="http://localhost")
    wav = env["media"]["audio"][0]  # 32 kB
    assert c.post("/search", files=upload(wav)).status_code == 200
    big = env["media"]["video"][0].read_bytes() + b"\0" * 60_000
    assert c.post("/search", files=upload(wav, "big.wav", big)).status_code == 413
    r = c.post("/search", files=upload(wav, "tool.exe"))
    assert r.status_code == 415 and "not accepted" in r.json()["detail"]
    r = c.post("/search", files=upload(wav, "fake.png", b"#!/bin/sh\nrm -rf /\n"))
    assert r.status_code == 415 and "does not look like a .png" in r.json()["detail"]
    r = c.post("/search", files=upload(wav, "../../etc/x.wav", b"RIFF\0\0\0\0WAVEjunk"))
    assert r.status_code == 422 and "x.wav" in r.json()["detail"]  # a broken WAV: the reader's reason
    assert c.post("/search", files=upload(wav, "empty.wav", b"")).status_code == 400
    assert list(tmp_path.iterdir()) == []  # every temporary upload folder removed


def test_token_and_binding(env):
    c = TestClient(create_app(env["model"], env["db"], token="s3cret"), base_url="http://localhost")
    assert c.post("/search", data={"text": "x"}).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert c.post("/search", data={"text": "x"}, headers=bad).status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert c.post("/search", data={"text": "x"}, headers=ok).status_code == 200
    some = item_id(str(env["media"]["image"][0]))
    assert (
        c.get(f"/items/{some}").status_code == 401 and c.get(f"/items/{some}", headers=ok).status_code == 200
    )
    assert c.get("/health").status_code == 200 and c.get("/").status_code == 200
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "tok")
    with pytest.raises(ValueError, match="pass a token"):
        check_binding("0.0.0.0", None)
    with pytest.raises(ValueError, match="pass a token"):  # refused before anything is loaded or bound
        serve(host="0.0.0.0", model="/nonexistent", store_dir="/nonexistent")


def test_demo_run_is_found_and_its_test_split_embedded(env, tmp_path, capsys):
    """`serve` with no model: a demo run's model/ and its test manifest (rows with `files`, as worlds.to_files
    writes them) give the app; the store is built on the first start and only topped up on the next."""
    import json
    import shutil

    from bindkit.serve.demo import demo_paths, latest_demo_run
    from bindkit.serve.server import build_app

    run = tmp_path / "runs" / "demo" / "2026-01-01"
    shutil.copytree(env["model_dir"], run / "model")
    split = run / "files" / "test"
    rows = []
    for i in range(2):
        files = {}
        for kind in ("image", "audio", "depth", "imu"):
            src = env["media"][kind][i]
            (split / kind).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, split / kind / src.name)
            files[kind] = f"{kind}/{src.name}"
        rows.append(
            {"id": f"t{i}", "label": str(i), "split": "test", "caption": f"digit {i}", "files": files}
        )
    (split / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "runs" / "demo" / "latest").symlink_to(run)
    assert latest_demo_run(tmp_path) == run.resolve()
    model, store, data = demo_paths(run)
    assert (model, store, data) == (run / "model", run / "store", [split / "manifest.jsonl"])
    c = TestClient(build_app(demo_run=run, progress=False), base_url="http://localhost")
    assert c.get("/health").json()["kinds"] == {"image": 2, "audio": 2, "depth": 2, "imu": 2, "text": 2}
    res = c.post("/search", data={"text": "digit 1", "k": "1", "modalities": "text"}).json()["results"]
    assert res[0]["text"] == "digit 1" and res[0]["label"] == "1" and res[0]["meta"]["split"] == "test"
    assert "10 embedded" in capsys.readouterr().out
    build_app(demo_run=run, progress=False)  # the second start finds the store complete
    assert "0 embedded, 10 unchanged" in capsys.readouterr().out
    assert Store.for_model(store, env["model"]).count() == 10
    with pytest.raises(FileNotFoundError, match="no demo run"):
        latest_demo_run(tmp_path / "elsewhere")


def test_heatmap_of_an_image_item_for_text_and_sound_queries(env):
    c, media = env["client"], env["media"]
    img_id = item_id(str(media["image"][0]))
    for data, files in (({"text": "a seven"}, None), ({}, upload(media["audio"][0]))):
        r = c.post(f"/items/{img_id}/heatmap", data=data, files=files)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        pic = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB")).astype(int)
        assert max(pic.shape[:2]) >= 200 and pic.std() > 5
    assert c.post(f"/items/{item_id(str(media['audio'][0]))}/heatmap", data={"text": "a"}).status_code == 400
    assert c.post(f"/items/{img_id}/heatmap").status_code == 400  # no query
    assert c.post(f"/items/{img_id}/heatmap", data={"text": "a", "text_weight": "inf"}).status_code == 400
    assert c.post("/items/0000000000000000/heatmap", data={"text": "a"}).status_code == 404
