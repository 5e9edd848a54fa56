"""Speed of the digits world: instances/s per modality, the demo-sized build, and the rasteriser vs a baseline.

    python benchmarks/bench_world.py [--n 1000] [--size 64] [--repeats 3] [--demo 3000 1000]

Per modality: `world.sample("train", n, modalities=[m])` (attributes and pen geometry included, reported apart as
"layout"); medians of `repeats` runs, wall and process CPU seconds (CPU counts every thread), and the tracemalloc
peak of one extra run. Baseline: the straightforward rasteriser, a full-frame distance field per instance to every
segment (numpy, vectorised over segments and pixels), against the windowed scatter-min rasteriser on the same paths.
"""

import argparse
import resource
import statistics
import time
import tracemalloc

import numpy as np

from bindkit.worlds import DigitsWorld
from bindkit.worlds.render import rasterize

MODALITIES = ("image", "video", "thermal", "depth", "imu", "audio", "text")


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of fn() over repeats."""
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def peak_mb(fn) -> float:
    """tracemalloc peak (MB) of one call (numpy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def full_frame_distances(points: np.ndarray, pen: np.ndarray, size: int) -> np.ndarray:
    """Baseline: per instance, squared distance from every pixel to every pen-down segment, min over segments."""
    g = np.arange(size, dtype=np.float32) + 0.5
    p = np.stack(np.meshgrid(g, g, indexing="xy"), -1)[None]  # (1, H, W, 2)
    out = np.empty((len(points), size, size), np.float32)
    for i in range(len(points)):
        a = points[i, :-1][pen[i]].astype(np.float32)[:, None, None]  # (S', 1, 1, 2)
        d = (points[i, 1:] - points[i, :-1])[pen[i]].astype(np.float32)[:, None, None]
        t = np.clip(((p - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-6), 0, 1)[..., None]
        out[i] = ((p - a - t * d) ** 2).sum(-1).min(0)
    return out


def bench_rasterizer(world: DigitsWorld, n: int, repeats: int) -> None:
    """Windowed scatter-min rasteriser vs the full-frame baseline on the same n paths (finished digit only)."""
    x = world.sample("train", n, modalities=())
    g = x.geometry
    pts = np.take_along_axis(g.dense, g.sparse_index[..., None], 1)
    strokes = np.take_along_axis(g.stroke, g.sparse_index, 1)
    pen = strokes[:, 1:] == strokes[:, :-1]
    reach = float(g.width.max()) / 2 + 1.3
    state = np.zeros(pen.shape, int)
    fast = rasterize(pts, pen, state, 1, world.image_size, reach)[:, 0]
    base = full_frame_distances(pts, pen, world.image_size)
    near = base < reach**2
    err = float(np.abs(fast[near] - base[near]).max())
    tw, _ = timed(lambda: rasterize(pts, pen, state, 1, world.image_size, reach), repeats)
    bw, _ = timed(lambda: full_frame_distances(pts, pen, world.image_size), repeats)
    print(f"rasterise {n} digits: windowed {n / tw:8.0f}/s   full-frame baseline {n / bw:8.0f}/s   "
          f"speed-up x{bw / tw:.1f}   max |diff| within reach {err:.2e} px^2")  # fmt: skip


def main() -> None:
    """Run the benchmark and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--demo", type=int, nargs=2, default=(3000, 1000), metavar=("TRAIN", "TEST"))
    args = ap.parse_args()
    w0 = time.perf_counter()
    world = DigitsWorld(image_size=args.size)
    print(
        f"DigitsWorld(image_size={args.size}) init (decodes the speech pool): {time.perf_counter() - w0:.2f} s"
    )
    lw, lc = timed(lambda: world.sample("train", args.n, modalities=()), args.repeats)
    print(f"{'layout':>8}: {args.n / lw:8.0f} inst/s   wall {lw:6.2f} s   cpu {lc:6.2f} s")
    for m in MODALITIES:
        wall, cpu = timed(lambda m=m: world.sample("train", args.n, modalities=(m,)), args.repeats)
        mem = peak_mb(lambda m=m: world.sample("train", args.n, modalities=(m,)))
        print(
            f"{m:>8}: {args.n / wall:8.0f} inst/s   wall {wall:6.2f} s   cpu {cpu:6.2f} s   peak {mem:7.1f} MB"
        )
    bench_rasterizer(world, min(args.n, 500), args.repeats)
    train, test = args.demo
    w0, c0 = time.perf_counter(), time.process_time()
    world.sample("train", train)
    world.sample("test", test, seed=1)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"demo build, {train} train + {test} test, all modalities at {args.size}px: wall {wall:.1f} s, "
          f"cpu {cpu:.1f} s, process peak RSS {rss:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
