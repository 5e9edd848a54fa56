"""Small media of every modality and a tiny random-weight model, shared by the store, serve and page tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import bindkit


def make_model(folder: Path, seed: int = 0) -> Path:
    """A random-weight imagebind_tiny saved with `save_model`."""
    import torch

    torch.manual_seed(seed)
    return bindkit.save_model(bindkit.ImageBind(bindkit.get_config("imagebind_tiny")), folder)


def _image(path: Path, rng: np.random.Generator, size: tuple[int, int] = (80, 60)) -> None:
    base = rng.integers(0, 256, 3)
    x = np.clip(base + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(x).save(path)


def _wav(path: Path, freq: float, seconds: float = 1.0, rate: int = 16000) -> None:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def _video(path: Path, rng: np.random.Generator, frames: int = 12, fps: int = 6) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for _ in range(frames):
            img = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _imu_csv(path: Path, rng: np.random.Generator, seconds: float = 5.0, rate: int = 100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    x = rng.normal(0, 1, (len(t), 6)).cumsum(0) * 0.1
    lines = ["t,ax,ay,az,gx,gy,gz"] + [
        ",".join(f"{v:.5f}" for v in (ti, *row)) for ti, row in zip(t, x, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def make_media(root: Path, n: int = 2, seed: int = 0) -> dict[str, list[Path]]:
    """`n` files of each kind under `root/<kind>/`, named so that detection needs each rule; returns them by kind."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Path]] = {
        k: [] for k in ("image", "video", "text", "audio", "depth", "thermal", "imu")
    }
    for sub in ("images", "audio", "video", "depth", "thermal", "imu", "text"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = root / "images" / f"img{i}.png"
        _image(p, rng)
        out["image"].append(p)
        p = root / "audio" / f"tone{i}.wav"
        _wav(p, 300.0 + 200 * i)
        out["audio"].append(p)
        p = root / "video" / f"clip{i}.mp4"
        _video(p, rng)
        out["video"].append(p)
        p = root / "depth" / f"scan{i}.npy"  # float metres
        np.save(p, rng.uniform(0.5, 4.0, (48, 64)).astype(np.float32))
        out["depth"].append(p)
        p = (
            root / "thermal" / f"heat{i}.png"
        )  # 16-bit single channel: depth or thermal, decided by the folder
        Image.fromarray(rng.integers(20000, 40000, (48, 64)).astype(np.uint16)).save(p)
        out["thermal"].append(p)
        p = root / "imu" / f"walk{i}.csv"
        _imu_csv(p, rng)
        out["imu"].append(p)
        p = root / "text" / f"note{i}.txt"
        p.write_text(["a red square", "the sound of rain", "a cold surface", "a fast walk"][i % 4] + f" {i}")
        out["text"].append(p)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """A uvicorn server for `app` on a free loopback port, in a background thread (a context manager)."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )

    def __enter__(self) -> ServerThread:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


_WORLD: dict = {}


def shared_world(tmp_path_factory) -> dict:
    """One tiny model, media of every kind (plus a broken PNG and an unknown file) and their store, built once per
    test session and shared read-only by the store, serve, load and page tests."""
    if not _WORLD:
        from bindkit.store import embed_paths

        root = tmp_path_factory.mktemp("world")
        model_dir = make_model(root / "model")
        media = make_media(root / "media")
        (root / "media" / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
        (root / "media" / "notes.xyz").write_text("not a known type")
        model = bindkit.load_model(model_dir)
        report = embed_paths([root / "media"], root / "db", model, batch_size=3, progress=False)
        _WORLD.update(root=root, model=model, model_dir=model_dir, media=media, report=report, db=root / "db")
    return _WORLD
