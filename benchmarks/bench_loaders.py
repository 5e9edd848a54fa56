"""Image, video, depth, thermal and IMU loading: batched loaders (worker threads) vs a per-file loop.

The baseline is the official helpers' structure: one file at a time through the same per-file code, then a stack.
The batched call runs the same per-file code on `--workers` threads (Pillow, FFmpeg and numpy release the GIL).
For a long video, seeking to the kept frames vs decoding every frame.
Then streaming: `StreamingDataset` through a `DataLoader` vs loading a whole folder at once, to show that peak
memory stays flat with the collection's size. Prints items/s (median of `--repeats`), ratios, peak RSS above the
starting level (sampled every millisecond) and the largest output difference between the two ways.

    python benchmarks/bench_loaders.py [--repeats 3] [--workers 4] [--files 48] [--stream-files 240]
"""

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from bindkit.data import (
    StreamingDataset,
    collate,
    load_depth,
    load_images,
    load_imu,
    load_thermal,
    load_videos,
)

MEDIA = Path(__file__).resolve().parents[2] / "shared/fixtures/official/preprocessing/media"


class PeakRSS:
    """Peak resident memory (MiB) above the level at entry, sampled every millisecond."""

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def _poll(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self._rss())

    @property
    def delta(self) -> float:
        return self.peak - self.start


def make_media(root: Path, n: int) -> dict[str, list[Path]]:
    """n synthetic files per image-like modality and IMU, plus 4 videos (the fixture clips, copied twice)."""
    rng = np.random.default_rng(0)
    out: dict[str, list[Path]] = {"image": [], "depth": [], "thermal": [], "imu": [], "video": []}
    yy, xx = np.mgrid[0:480, 0:640]
    for i in range(n):
        rgb = np.stack([(xx + 7 * i) % 256, (yy + 3 * i) % 256, (xx ^ yy) % 256], -1).astype(np.uint8)
        out["image"].append(root / f"im{i:03d}.jpg")
        Image.fromarray(rgb).save(out["image"][-1], quality=90)
        mm = (500 + 20 * xx + 5 * yy + rng.integers(0, 50, xx.shape)).astype(np.uint16)
        out["depth"].append(root / f"d{i:03d}.png")
        Image.fromarray(mm).save(out["depth"][-1])
        out["thermal"].append(root / f"t{i:03d}.png")
        Image.fromarray(rgb[:, :, 0]).save(out["thermal"][-1])
        t = np.arange(2000) / 200.0
        x = np.column_stack([t, np.sin(t[:, None] * np.arange(1, 7)) + 0.01 * rng.standard_normal((2000, 6))])
        out["imu"].append(root / f"u{i:03d}.csv")
        np.savetxt(out["imu"][-1], x, delimiter=",", header="t,ax,ay,az,gx,gy,gz", comments="", fmt="%.6f")
    for k, src in enumerate(sorted(MEDIA.glob("vi*.mp4")) * 2):
        out["video"].append(root / f"v{k}{src.suffix}")
        shutil.copy(src, out["video"][-1])
    return out


def measure(fn, repeats: int) -> tuple[float, float, torch.Tensor]:
    """(median seconds, peak RSS MiB, last output) of `fn()`, after one untimed warm-up call."""
    fn()
    times, peak, y = [], 0.0, None
    for _ in range(repeats):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            y = fn()
            times.append(time.perf_counter() - t0)
        peak = max(peak, mem.delta)
    return statistics.median(times), peak, y


def compare(name: str, load, paths: list[Path], workers: int, repeats: int, **kw) -> None:
    loop = lambda: torch.stack([load([p], **kw)[0] for p in paths])  # noqa: E731
    batch = lambda: load(paths, num_workers=workers, **kw)  # noqa: E731
    tl, ml, yl = measure(loop, repeats)
    tb, mb, yb = measure(batch, repeats)
    n = len(paths)
    print(f"{name:8s} {n:4d} files  loop {n / tl:8.1f}/s ({ml:6.1f} MiB)  batched {n / tb:8.1f}/s ({mb:6.1f} MiB)"
          f"  speed-up {tl / tb:4.2f}x  max|diff| {(yl - yb).abs().max().item():.1e}")  # fmt: skip


def streaming(folder: Path, n: int) -> None:
    """Peak memory of streaming a folder through a DataLoader vs loading it at once (run first, on a fresh heap)."""
    folder.mkdir()
    for i in range(n):
        rgb = np.full((360, 480, 3), (i * 37 % 256, i % 256, 128), np.uint8)
        Image.fromarray(rgb).save(folder / f"s{i:04d}.jpg")

    def stream():
        count = 0
        for b in DataLoader(StreamingDataset(folder, "image"), batch_size=16, collate_fn=collate):
            count += len(b.keys)  # a consumer would embed and store the batch here, then drop it
        return torch.tensor(count)

    ts, ms, count = measure(stream, 1)
    ta, ma, allx = measure(lambda: load_images(sorted(folder.glob("*.jpg"))), 1)
    print(
        f"streaming {int(count)} images in batches of 16: {n / ts:.1f}/s, peak {ms:.1f} MiB; all at once:"
        f" {n / ta:.1f}/s, peak {ma:.1f} MiB (the output alone is {allx.numel() * 4 / 2**20:.1f} MiB)"
    )


def long_video(root: Path, repeats: int) -> None:
    """Kept frames of a 2-minute 640x360 H.264 video (x264 default GOP): seeking vs decoding every frame."""
    import av

    from bindkit.data.video import clip_frame_indices, clip_times, decode_video

    path = root / "long.mp4"
    with av.open(str(path), "w") as f:
        s = f.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        for i in range(3000):
            img = np.zeros((360, 640, 3), np.uint8)
            img[:, :, 0], img[100:160, (i * 3) % 580 : (i * 3) % 580 + 60] = i % 256, 255
            f.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        f.mux(s.encode())

    def wanted(n, fps):
        return [i for a, b in clip_times(n / fps) for i in clip_frame_indices(n, fps, a, b)]

    ta, _, (a, _, _) = measure(lambda: decode_video(path, wanted, seek=False), repeats)
    tb, _, (b, _, _) = measure(lambda: decode_video(path, wanted, seek=True), repeats)
    same = all(np.array_equal(a[k], b[k]) for k in a)
    print(
        f"long video (3000 frames): decode all {ta:.2f} s, seek {tb:.2f} s, speed-up {ta / tb:.1f}x, same frames {same}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--files", type=int, default=48)
    ap.add_argument("--stream-files", type=int, default=240)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        streaming(Path(tmp) / "stream", args.stream_files)
        media = make_media(Path(tmp), args.files)
        print(f"torch threads {torch.get_num_threads()}, loader threads {args.workers}")
        compare("image", load_images, media["image"], args.workers, args.repeats)
        compare("depth", load_depth, media["depth"], args.workers, args.repeats)
        compare("thermal", load_thermal, media["thermal"], args.workers, args.repeats)
        compare("imu", load_imu, media["imu"], args.workers, args.repeats)
        if media["video"]:
            compare("video", load_videos, media["video"], args.workers, args.repeats)
        long_video(Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
