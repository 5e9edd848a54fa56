"""A short load test on loopback: a bounded number of concurrent clients, a mix of requests, no errors."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from store_fixtures import ServerThread, shared_world

pytest.importorskip("uvicorn")
pytest.importorskip("lancedb")

import httpx  # noqa: E402

from bindkit.serve import create_app  # noqa: E402
from bindkit.store.store import item_id  # noqa: E402

CONCURRENCY, REQUESTS = 8, 160


def test_concurrent_requests_all_succeed(tmp_path_factory):
    w = shared_world(tmp_path_factory)
    model, media = w["model"], w["media"]
    image, wav = media["image"][0], media["audio"][1]
    thumbs = [f"/items/{item_id(str(media[k][0]))}?thumb=true" for k in ("image", "depth", "imu", "audio")]

    def one(i: int, client: httpx.Client) -> tuple[int, int]:
        kind = i % 5
        if kind == 0:
            r = client.post("/search", data={"text": f"query number {i}", "k": "5"})
        elif kind == 1:
            r = client.post(
                "/search", files={"file": (image.name, image.read_bytes())}, data={"group": "true"}
            )
        elif kind == 2:
            r = client.post("/search", files={"file": (wav.name, wav.read_bytes())}, data={"k": "3"})
        elif kind == 3:
            r = client.get(thumbs[i % len(thumbs)])
        else:
            r = client.get("/health")
        return i, r.status_code

    with ServerThread(create_app(model, w["db"])) as srv:
        with httpx.Client(
            base_url=srv.url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY)
        ) as client:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                results = list(pool.map(lambda i: one(i, client), range(REQUESTS)))
            took = time.perf_counter() - t0
    errors = [(i, s) for i, s in results if s != 200]
    assert errors == [], f"{len(errors)} of {REQUESTS} requests failed: {errors[:10]}"
    assert len(results) == REQUESTS
    print(f"{REQUESTS} requests, {CONCURRENCY} concurrent: {REQUESTS / took:.0f} req/s")
