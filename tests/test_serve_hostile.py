"""The service against hostile requests: bombs and garbage get a 4xx naming the file (never a 5xx, never a temp
path), bounded memory, headers checked before the body (Host, Origin, token, Content-Length), files that changed
since they were embedded answered 410, non-finite weights refused, and concurrent queries batched."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hostile_uploads import bombs, garbage
from store_fixtures import ServerThread, shared_world

pytest.importorskip("fastapi")
pytest.importorskip("lancedb")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bindkit.serve import create_app  # noqa: E402
from bindkit.serve.batch import Batcher, Busy  # noqa: E402
from bindkit.serve.uploads import ALLOWED_EXT as ACCEPTED  # noqa: E402
from bindkit.store.store import item_id  # noqa: E402

HERE = Path(__file__).parent
LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return shared_world(tmp_path_factory)


@pytest.fixture(scope="module")
def client(world):
    return TestClient(create_app(world["model"], world["db"]), base_url=LOCAL)


def test_garbage_uploads_get_4xx_naming_the_file(client, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name, data in garbage().items():
        for route in ("/search", "/embed"):
            r = client.post(route, files={"file": (name, data)})
            detail = r.json()["detail"]
            assert 400 <= r.status_code < 500 and r.status_code != 404, (name, route, r.status_code, detail)
            assert name in detail and "bindkit-upload-" not in detail and str(tmp_path) not in detail, detail
    assert list(tmp_path.iterdir()) == []


_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from fastapi.testclient import TestClient
from bindkit.serve import create_app
from hostile_uploads import bombs
c = TestClient(create_app(sys.argv[2], sys.argv[3]), base_url="http://localhost")
out = {}
for name, data in bombs().items():
    for route in ("/search", "/embed"):
        r = c.post(route, files={"file": (name, data)})
        out[f"{route} {name}"] = [r.status_code, r.json().get("detail", "")]
out["ok"] = c.post("/search", data={"text": "still alive"}).status_code
# this process's own peak RSS (getrusage's ru_maxrss keeps the parent pytest's peak across fork and exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"results": out, "maxrss_mb": int(hwm.split()[1]) / 1024}))
"""


def test_bombs_are_refused_with_bounded_memory(world, tmp_path):
    """Each bomb is small on the wire and gigabytes decoded; in a fresh process the service refuses them all with
    413/422 naming the file, and its peak RSS stays under 1.5 GB (the model and torch take about 0.6 GB)."""
    db = tmp_path / "db"
    shutil.copytree(world["db"], db)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(HERE), str(world["model_dir"]), str(db)],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    res = report["results"]
    assert res.pop("ok") == 200
    for key, (status, detail) in res.items():
        assert status in (413, 422), (key, status, detail)
        assert key.split()[1] in detail, (key, detail)
    assert res["/search zeros_depth.npz"][0] == 413 and res["/embed one_hz.wav"][0] == 422
    assert report["maxrss_mb"] < 1500, report["maxrss_mb"]
    assert "Traceback" not in proc.stderr


def test_headers_are_checked_before_the_body(world):
    c = TestClient(create_app(world["model"], world["db"]), base_url=LOCAL)
    assert c.post("/search", data={"text": "x"}).status_code == 200
    for host in ("evil.example", "evil.example:8000", "192.168.1.4", ""):
        r = c.post("/search", data={"text": "x"}, headers={"Host": host})
        assert r.status_code == 400 and "Host" in r.json()["detail"], host
    assert c.get("/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert c.get("/health", headers={"Host": "[::1]:8000"}).status_code == 200
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost"}):  # fmt: skip
        r = c.post("/search", data={"text": "x"}, headers=headers)
        assert r.status_code == 403, headers
    assert c.post("/search", data={"text": "x"}, headers={"Origin": LOCAL}).status_code == 200
    assert c.post("/search", data={"text": "x"}, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    # with a token: every path but /health, the page and its static files needs it, the schema and docs too
    t = TestClient(create_app(world["model"], world["db"], token="s3cret"), base_url="http://search.example")
    ok = {"Authorization": "Bearer s3cret"}
    for path in ("/openapi.json", "/docs", "/redoc", "/items/0000000000000000"):
        assert t.get(path).status_code == 401, path
    assert t.get("/openapi.json", headers=ok).status_code == 200
    assert [t.get(p).status_code for p in ("/", "/health", "/static/app.js")] == [200, 200, 200]
    named = create_app(world["model"], world["db"], token="s3cret", allowed_hosts=["search.example"])
    assert TestClient(named, base_url="http://search.example").get("/health").status_code == 200
    assert TestClient(named, base_url="http://other.example").get("/health").status_code == 400


def _raw(port: int, request: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return s.recv(65536)


def test_413_from_content_length_and_keep_alive_after_errors(world):
    """On a real server: a 200 MiB Content-Length is answered at once with no body sent; a bomb and garbage on a
    keep-alive connection leave it usable for the next request."""
    with ServerThread(create_app(world["model"], world["db"])) as srv:
        head = (f"POST /search HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: multipart/form-data; "
                f"boundary=x\r\nContent-Length: {200 << 20}\r\n\r\n").encode()  # fmt: skip
        t0 = time.perf_counter()
        reply = _raw(srv.port, head)
        assert reply.startswith(b"HTTP/1.1 413") and time.perf_counter() - t0 < 5, reply[:200]
        events: list[str] = []
        trace = {"trace": lambda event, info: events.append(event)}
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            for name, data in [("huge.png", bombs()["huge.png"]), ("noise.wav", garbage()["noise.wav"])]:
                r = c.post("/search", files={"file": (name, data)}, extensions=trace)
                assert r.status_code in (413, 422) and name in r.json()["detail"]
                assert c.post("/search", data={"text": "next"}, extensions=trace).status_code == 200
        assert events.count("connection.connect_tcp.complete") == 1  # one connection throughout: never reset


def test_chunked_body_over_the_limit_gets_413(world):
    c = TestClient(create_app(world["model"], world["db"], max_upload_bytes=10_000), base_url=LOCAL)

    def chunks():
        for _ in range(40):
            yield b"--x\r\n" + b"a" * 4000

    r = c.post("/search", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_weights_must_be_finite(client):
    for w in ("inf", "-inf", "nan"):
        r = client.post("/search", data={"text": "x", "text_weight": w})
        assert r.status_code == 400 and "text_weight must be a finite number" in r.json()["detail"], w
    assert client.post("/search", data={"text": "x", "text_weight": "2.5"}).status_code == 200


def test_items_are_served_only_while_unchanged(world, tmp_path):
    """/items/<id> answers 410 once a file's size, or its content behind a new mtime, differs from its row."""
    from bindkit.store import embed_paths

    src = world["media"]
    folder = tmp_path / "data"
    folder.mkdir()
    img, wav, txt = (
        shutil.copy(src[k][0], folder / Path(src[k][0]).name) for k in ("image", "audio", "text")
    )
    embed_paths([folder], tmp_path / "db", world["model"], progress=False)
    c = TestClient(create_app(world["model"], tmp_path / "db"), base_url=LOCAL)
    get = lambda p, **kw: c.get(f"/items/{item_id(str(p))}", **kw)  # noqa: E731
    assert get(img).status_code == 200 and get(wav).status_code == 200
    st = os.stat(img)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes: hashed, still served
    r = get(img)
    assert r.status_code == 200 and r.content == Path(img).read_bytes()
    data = bytearray(Path(wav).read_bytes())
    data[-10:] = bytes(10)  # same size, new content
    Path(wav).write_bytes(bytes(data))
    assert get(wav).status_code == 410 and get(wav, params={"thumb": "true"}).status_code == 410
    Path(txt).write_text(Path(txt).read_text() + " and more")
    assert get(txt).status_code == 410
    os.remove(img)
    assert get(img).status_code == 410 and "no longer exists" in get(img).json()["detail"]
    Path(img).symlink_to("/etc/hostname")
    assert get(img).status_code == 410


def test_concurrent_items_share_forward_passes(world):
    """Eight items queued while the model is busy run in one pass, each getting its own row, equal to the
    embedding of the item alone; a full queue refuses at once and a request past its timeout gives up."""
    import torch

    from bindkit.data import tokenize

    model = world["model"]
    gate, calls = threading.Event(), []
    real = model.encode

    class Slow:
        def __getattr__(self, name):
            return getattr(model, name)

        def encode(self, inputs):
            calls.append(next(iter(inputs.values())).shape[0])
            gate.wait(30)
            return real(inputs)

    texts = [f"query {i}" for i in range(9)]
    tokens = [tokenize([t], context_length=32) for t in texts]
    b = Batcher(Slow(), max_batch=64, max_queue=8, timeout_s=60)
    out: dict[int, np.ndarray] = {}
    first = threading.Thread(target=lambda: out.__setitem__(0, b.encode("text", tokens[0])))
    first.start()
    while not calls:
        time.sleep(0.01)  # the worker holds item 0 in a pass
    rest = [threading.Thread(target=lambda i=i: out.__setitem__(i, b.encode("text", tokens[i])))
            for i in range(1, 9)]  # fmt: skip
    for t in rest:
        t.start()
    while b.queue.qsize() < 8:
        time.sleep(0.01)
    with pytest.raises(Busy, match="busy"):
        b.encode("text", tokens[0])  # the queue holds 8: the ninth waits for nothing
    gate.set()
    for t in [first, *rest]:
        t.join(30)
    assert calls == [1, 8] and b.passes == 2
    want = real({"text": torch.cat(tokens)})["text"].numpy()
    for i in range(9):
        np.testing.assert_allclose(out[i], want[i], atol=1e-5)
    gate.clear()
    slow = Batcher(Slow(), timeout_s=0.2)
    with pytest.raises(Busy, match="no answer within"):
        slow.encode("text", tokens[0])
    gate.set()
    b.close()
    slow.close()


def test_busy_is_503_with_retry_after(world, monkeypatch):
    app = create_app(world["model"], world["db"])
    svc = app.state.service

    def busy(*a):
        raise Busy("the service is busy (256 requests waiting); retry shortly")

    monkeypatch.setattr(svc.batcher, "encode", busy)
    r = TestClient(app, base_url=LOCAL).post("/search", data={"text": "x"})
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["detail"]


_CORPUS_CHILD = """
import json, os, stat, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from fastapi.testclient import TestClient
from bindkit.serve import create_app
from hostile_corpus import build_corpus
cases = build_corpus(Path(sys.argv[4]))
c = TestClient(create_app(sys.argv[2], sys.argv[3]), base_url="http://localhost", raise_server_exceptions=False)
out = []
for case in cases:
    p = case.path
    if not (p.exists() and stat.S_ISREG(os.stat(p).st_mode)) or str(p).startswith("/dev"):
        continue  # FIFOs, sockets and devices cannot be uploaded: an upload is bytes
    r = c.post("/search", files={"file": (p.name, p.read_bytes())}, data={"k": "2"})
    detail = r.json().get("detail", "") if r.headers.get("content-type") == "application/json" else r.text
    out.append([str(p), case.what, case.bad, sorted(case.may_load), r.status_code, str(detail)])
# this process's own peak RSS (getrusage's ru_maxrss keeps the parent pytest's peak across fork and exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"results": out, "maxrss_mb": int(hwm.split()[1]) / 1024}))
"""


def test_hostile_corpus_through_the_service(world, tmp_path):
    """Every regular file of the hostile corpus (tests/hostile_corpus.py) uploaded to /search in a fresh process:
    no 5xx, every refusal names the file as sent, no bad file that no loader may accept gets a 200, and the
    service's peak RSS stays under 1.5 GB."""
    db = tmp_path / "db"
    shutil.copytree(world["db"], db)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _CORPUS_CHILD, str(HERE), str(world["model_dir"]), str(db),
                           str(tmp_path / "corpus")], capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = report["results"]
    assert len(results) >= 200, len(results)
    problems = []
    for path, what, bad, may_load, status, detail in results:
        name = Path(path).name
        if status >= 500:
            problems.append(f"{status} for {name} ({what}): {detail[:200]}")
        elif status != 200 and Path(name).suffix.lower() in ACCEPTED and name not in detail:
            problems.append(f"{status} for {name} ({what}) does not name it: {detail[:200]}")
        elif status == 200 and bad and not may_load:
            problems.append(f"bad {name} ({what}) accepted")
    assert problems == [], "\n".join(problems)
    assert sum(r[4] == 200 for r in results if not r[2]) >= 10  # the good controls are served
    assert report["maxrss_mb"] < 1500, report["maxrss_mb"]
