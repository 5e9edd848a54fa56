"""The checkpoint download helper against a local HTTP server (never the network)."""

import hashlib
import http.server
import threading

import pytest

from bindkit.hub import Remote, default_cache_dir, download

PAYLOAD = bytes(range(256)) * 4000  # 1 MB


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring `Range: bytes=N-` unless the server says not to."""

    ranges = True
    hits: list = []

    def do_GET(self):
        rng = self.headers.get("Range")
        self.hits.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if (rng and self.ranges) else 0
        body = PAYLOAD[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    RangeHandler.hits, RangeHandler.ranges = [], True
    yield f"http://127.0.0.1:{srv.server_port}/imagebind_huge.pth"
    srv.shutdown()


def _remote(url, sha=hashlib.sha256(PAYLOAD).hexdigest()):
    return Remote(url=url, filename="ckpt.pth", size=len(PAYLOAD), sha256=sha)


def test_downloads_into_cache_and_verifies(server, tmp_path):
    path = download(_remote(server), cache_dir=tmp_path, progress=False)
    assert path == tmp_path / "checkpoints" / "ckpt.pth" and path.read_bytes() == PAYLOAD
    assert download(_remote(server), cache_dir=tmp_path, progress=False) == path  # cached: no second request
    assert len(RangeHandler.hits) == 1


@pytest.mark.parametrize("ranges", [True, False])
def test_resumes_a_partial_file(server, tmp_path, ranges):
    RangeHandler.ranges = ranges
    part = tmp_path / "checkpoints" / "ckpt.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:300_000])
    path = download(_remote(server), cache_dir=tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert RangeHandler.hits == ["bytes=300000-"]


def test_hash_mismatch_names_both_hashes(server, tmp_path):
    with pytest.raises(ValueError) as e:
        download(_remote(server, sha="0" * 64), cache_dir=tmp_path, progress=False)
    assert "0" * 64 in str(e.value) and hashlib.sha256(PAYLOAD).hexdigest() in str(e.value)
    # an explicit hash accepts another file; None skips the check
    path = download(_remote(server, sha="0" * 64), cache_dir=tmp_path, sha256=None, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_size_mismatch_is_an_error(server, tmp_path):
    bad = Remote(url=server, filename="x.pth", size=len(PAYLOAD) + 1, sha256=None)
    with pytest.raises(OSError, match="expected"):
        download(bad, cache_dir=tmp_path, progress=False)


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    path = download(_remote(src.as_uri()), cache_dir=tmp_path / "cache", progress=False)
    assert path.read_bytes() == PAYLOAD


def test_cache_dir_is_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "bindkit"


def test_load_pretrained_is_exported_and_loads_the_cached_file(tmp_path):
    """`bindkit.load_pretrained` reads `<cache_dir>/checkpoints/imagebind_huge.pth` (already there: no download)."""
    import torch

    import bindkit

    torch.manual_seed(0)
    ref = bindkit.ImageBind(bindkit.get_config("imagebind_huge").select(["imu"]))  # the smallest huge encoder
    (tmp_path / "checkpoints").mkdir()
    bindkit.save_official_checkpoint(ref, tmp_path / "checkpoints" / "imagebind_huge.pth")
    got = bindkit.load_pretrained(modalities=["imu"], cache_dir=tmp_path, dtype=torch.bfloat16, progress=False)
    assert isinstance(got, bindkit.ImageBind) and not got.training
    want, have = ref.state_dict(), got.state_dict()
    assert set(have) == set(want)
    assert all(have[k].dtype == torch.bfloat16 and torch.equal(have[k], want[k].to(torch.bfloat16)) for k in want)
