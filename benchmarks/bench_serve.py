"""The HTTP service under load on loopback: requests/s and p50/p95 latency per request type and concurrency.

The server (uvicorn, one process) runs `create_app` on a model and store; by default a random-weight imagebind_tiny
and a store of 200 generated images, 100 WAV clips and 100 IMU CSVs under --dir. Pass --model and --store to
measure a real store instead (e.g. a demo run's). The baseline is the same query answered in-process by the library
(no HTTP), one at a time, so the difference is the cost of the service itself.

    python benchmarks/bench_serve.py --requests 200 --concurrency 1,4,16
    python benchmarks/bench_serve.py --requests 300 --text-burst 100   # micro-batching vs one item per pass
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np


def make_store(folder: Path) -> tuple[Path, Path]:
    """A random tiny model and a store of generated images, sounds and IMU traces (reused when already built)."""
    if (folder / "db").is_dir() and (folder / "model" / "config.json").is_file():
        return folder / "model", folder / "db"
    import soundfile as sf
    import torch
    from PIL import Image

    import bindkit
    from bindkit.store import embed_paths

    torch.manual_seed(0)
    model = bindkit.save_model(bindkit.ImageBind(bindkit.get_config("imagebind_tiny")), folder / "model")
    rng = np.random.default_rng(0)
    media = folder / "media"
    for sub in ("images", "audio", "imu"):
        (media / sub).mkdir(parents=True, exist_ok=True)
    for i in range(200):
        Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(
            media / "images" / f"{i}.png"
        )
    t = np.arange(32000) / 16000
    for i in range(100):
        sf.write(media / "audio" / f"{i}.wav", 0.3 * np.sin(2 * np.pi * (200 + 10 * i) * t), 16000)
        rows = np.c_[np.arange(500) / 100, rng.normal(size=(500, 6)).cumsum(0)]
        np.savetxt(media / "imu" / f"{i}.csv", rows, delimiter=",", header="t,ax,ay,az,gx,gy,gz", comments="")
    print(embed_paths([media], folder / "db", model, progress=False).summary().splitlines()[0])
    return model, folder / "db"


def run_server(model: str, store: str, port: int, max_batch: int = 64) -> None:
    import uvicorn

    from bindkit.serve import create_app
    from bindkit.serve.limits import Limits

    # a long per-request timeout: the burst measures throughput, and a 503 would return early and flatter it
    app = create_app(model, store, limits=Limits(max_batch=max_batch, request_timeout_s=600.0))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def start_server(model: str, store: str, max_batch: int = 64) -> tuple[Any, str]:
    """A server process on a free loopback port -> (process, url), once it answers /health."""
    port = free_port()
    proc = mp.get_context("spawn").Process(
        target=run_server, args=(model, store, port, max_batch), daemon=True
    )
    proc.start()
    url = f"http://127.0.0.1:{port}"
    _wait(url)
    return proc, url


def text_burst(model: str, store: str, n: int, concurrency: int, repeats: int) -> None:
    """`concurrency` clients sending `n` text searches, against one item per forward pass (the service before
    batching: one request at a time in the model) and against micro-batching, alternated `repeats` times."""
    search = lambda c, i: c.post("/search", data={"text": f"query {i}", "k": "10"})  # noqa: E731
    print(f"{n} text searches, {concurrency} concurrent clients: medians of {repeats} alternated runs")
    print(f"{'service':>24} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6} {'passes':>6}")
    stats: dict[str, list[tuple[float, float, float, int, int]]] = {"no batching": [], "micro-batched": []}
    for _ in range(repeats):
        for name, max_batch in (("no batching", 1), ("micro-batched", 64)):
            proc, url = start_server(model, store, max_batch)
            rps, lat, err = load(url, search, n, concurrency)
            stats[name].append((rps, float(np.median(lat)), float(np.percentile(lat, 95)), err, 0))
            proc.terminate()
            proc.join()
    for name, rows in stats.items():
        r = np.array(rows)
        print(f"{name:>24} {np.median(r[:, 0]):7.1f} {np.median(r[:, 1]):8.1f} {np.median(r[:, 2]):8.1f} "
              f"{int(r[:, 3].sum()):>6}")  # fmt: skip
    ratio = np.median([r[0] for r in stats["micro-batched"]]) / np.median(
        [r[0] for r in stats["no batching"]]
    )
    print(f"throughput ratio micro-batched / no batching: {ratio:.2f}x")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(url: str, make_request, n: int, concurrency: int) -> tuple[float, np.ndarray, int]:
    """n requests with `concurrency` clients -> (requests/s, latencies ms, errors)."""
    import httpx

    lat, errors = [], 0
    with httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:

        def one(i: int) -> tuple[float, int]:
            t0 = time.perf_counter()
            status = make_request(client, i).status_code
            return (time.perf_counter() - t0) * 1e3, status

        make_request(client, 0)  # warm-up
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for ms, status in pool.map(one, range(n)):
                lat.append(ms)
                errors += status != 200
        took = time.perf_counter() - t0
    return n / took, np.array(lat), errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--store", default=None)
    ap.add_argument("--dir", default="/tmp/bindkit-bench-serve")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--text-burst", type=int, default=0, metavar="CLIENTS",
                    help="only: --requests text searches from CLIENTS concurrent clients, batched vs not")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    model, store = (a.model, a.store) if a.model else make_store(Path(a.dir))
    if a.text_burst:
        return text_burst(str(model), str(store), a.requests, a.text_burst, a.repeats)
    image = next((Path(a.dir) / "media" / "images").glob("*.png"), None) if not a.model else None
    port = free_port()
    server = mp.get_context("spawn").Process(
        target=run_server, args=(str(model), str(store), port), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{port}"
    _wait(url)
    ids = _ids(url)
    kinds = {
        "health": lambda c, i: c.get("/health"),
        "search text": lambda c, i: c.post("/search", data={"text": f"query {i}", "k": "10"}),
        "search text, grouped": lambda c, i: c.post(
            "/search", data={"text": f"q {i}", "k": "5", "group": "true"}
        ),
        "item thumbnail": lambda c, i: c.get(f"/items/{ids[i % len(ids)]}?thumb=true"),
    }
    if image is not None:
        data = image.read_bytes()
        kinds["search by image upload"] = lambda c, i: c.post("/search", files={"file": ("q.png", data)})
    base = mp.get_context("spawn").Process(target=_baseline, args=(str(model), str(store), a.requests))
    base.start()  # a fresh process like the server's, so both run torch under the same conditions
    base.join()
    print(f"{'request':>24} {'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'errors':>6}")
    for name, fn in kinds.items():
        for c in map(int, a.concurrency.split(",")):
            rps, lat, err = load(url, fn, a.requests, c)
            print(
                f"{name:>24} {c:>7} {rps:7.1f} {np.median(lat):8.1f} {np.percentile(lat, 95):8.1f} {err:>6}"
            )
    server.terminate()
    print(f"client peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def _wait(url: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("server did not start")


def _ids(url: str) -> list[str]:
    import httpx

    res = httpx.post(url + "/search", data={"text": "anything", "k": "50"}, timeout=60).json()["results"]
    return [r["id"] for r in res if r["thumb"]]


def _baseline(model: str, store: str, n: int) -> None:
    """The library answering text queries in-process, serially: the cost without HTTP."""
    from bindkit.resolve import load
    from bindkit.store.search import query_vector
    from bindkit.store.store import Store

    m = load(model)
    s = Store.for_model(store, m)
    lat = []
    for i in range(min(n, 100)):
        t0 = time.perf_counter()
        s.search(query_vector(m, s, [("text", f"query {i}", 1.0)]), 10)
        lat.append((time.perf_counter() - t0) * 1e3)
    lat = np.array(lat)
    print(f"baseline in-process text search: {1e3 / lat.mean():.1f} q/s, p50 {np.median(lat):.1f} ms, "
          f"p95 {np.percentile(lat, 95):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
