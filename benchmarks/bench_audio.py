"""Audio loading speed: batched `load_audio` vs a per-file, per-clip loop doing the same work.

Generates 200 five-second files at mixed sample rates (8, 16, 22.05, 44.1, 48 kHz; wav and flac; mono and
stereo) in a temp dir. The baseline has the official loader's structure: per file decode, resample (kernel built
per call, as torchaudio does), then per clip an in-place mean removal and a Kaldi fbank (mel filters built per
call), transpose, pad, normalise, stack. Prints files/s (median of repeats), the ratio, peak RSS above the
starting RSS for each, and the largest output difference between the two.

    python benchmarks/bench_audio.py [--files 200] [--repeats 5] [--threads N]
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from bindkit.data.audio import clip_slices, load_audio
from bindkit.data.fbank import frame_geometry, mel_banks
from bindkit.data.resample import output_length, sinc_kernel

RATES = [8000, 16000, 22050, 44100, 48000]


def make_files(folder: Path, n: int, seconds: float = 5.0) -> list[Path]:
    """n files cycling through rates and formats: chirps plus noise, every third one stereo."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sr, ext = RATES[i % len(RATES)], ("wav", "flac")[(i // len(RATES)) % 2]
        t = np.arange(int(sr * seconds)) / sr
        x = 0.3 * np.sin(2 * np.pi * (200 + 300 * i % 2000) * t * (1 + t)) + 0.05 * rng.standard_normal(
            t.size
        )
        x = np.stack([x, 0.5 * x]) if i % 3 == 0 else x[None]
        p = folder / f"a{i:03d}_{sr}.{ext}"
        sf.write(p, x.T.astype(np.float32), sr, subtype="PCM_16")
        paths.append(p)
    return paths


# ---------------------------------------------------------------- baseline: the official loader's structure
def baseline_resample(w: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """torchaudio.functional.resample's steps: kernel built per call, one strided conv1d over the padded signal."""
    kernel, width = sinc_kernel.__wrapped__(orig, new, w.dtype)
    g = int(np.gcd(orig, new))
    x = F.pad(w, (width, width + orig // g))
    y = F.conv1d(x[:, None], kernel, stride=orig // g)  # (C, new, steps)
    return y.transpose(1, 2).reshape(w.shape[0], -1)[:, : output_length(w.shape[-1], orig, new)]


def baseline_fbank(clip: torch.Tensor) -> torch.Tensor:
    """torchaudio.compliance.kaldi.fbank's steps for one clip, channel 0 -> (frames, 128)."""
    window, hop, n_fft = frame_geometry(16000)
    x = clip[0]
    frames = x.as_strided(((x.shape[0] - window) // hop + 1, window), (hop, 1))  # (F, 400)
    frames = frames - frames.mean(1, keepdim=True)
    eps = torch.tensor(torch.finfo(torch.float32).eps)
    torch.max(
        frames.pow(2).sum(1), eps
    ).log()  # the raw frame energy Kaldi computes (default raw_energy=True)
    prev = F.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)[:, :-1]
    frames = (frames - 0.97 * prev) * torch.hann_window(window, periodic=False).unsqueeze(0)
    frames = F.pad(frames.unsqueeze(0), (0, n_fft - window)).squeeze(0)
    power = torch.fft.rfft(frames).abs().pow(2.0)
    banks = F.pad(mel_banks.__wrapped__(128, 16000).t(), (0, 1))  # (128, 257), built per call
    return torch.max(torch.mm(power, banks.t()), eps).log()


def baseline_load(paths: list[Path]) -> torch.Tensor:
    """Per file: decode, resample, then per clip: in-place mean removal, fbank, pad, normalise."""
    out = []
    for p in paths:
        data, sr = sf.read(p, dtype="float32", always_2d=True)
        w = torch.from_numpy(np.ascontiguousarray(data.T))
        if sr != 16000:
            w = baseline_resample(w, sr, 16000)
        clips = []
        for a, b in clip_slices(w.shape[-1]):
            clip = w[:, a:b]
            clip -= clip.mean()
            fb = baseline_fbank(clip).transpose(0, 1)  # (128, frames)
            fb = F.pad(fb, (0, 204 - fb.shape[1])) if fb.shape[1] < 204 else fb[:, :204]
            clips.append(((fb - -4.268) / 9.138).unsqueeze(0))
        out.append(torch.stack(clips))
    return torch.stack(out)


# ---------------------------------------------------------------- measurement
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
        self.peak = max(self.peak, self._rss())

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


def measure(fns: dict, repeats: int) -> dict:
    """Wall times, CPU times (all threads) and peak RSS per function; repeats interleaved so load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up: thread pool, FFT plans, page cache
    stats = {k: ([], [], 0.0) for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            walls, cpus, peak = stats[name]
            with PeakRSS() as mem:
                t, c = time.perf_counter(), time.process_time()
                out = fn()
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            stats[name] = (walls, cpus, max(peak, mem.delta))
            del out
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads for both (0: torch default)"
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.files)
        print(
            f"{len(paths)} five-second files, rates {RATES}, wav+flac, torch threads {torch.get_num_threads()}"
        )
        fns = {
            "baseline per-file loop": lambda: baseline_load(paths),
            "load_audio batched": lambda: load_audio(paths),
        }
        results = measure(fns, args.repeats)
        medians = {}
        n = len(paths)
        for name, (walls, cpus, peak) in results.items():
            med, cpu = medians[name] = statistics.median(walls), statistics.median(cpus)
            print(
                f"{name:24s} median {med * 1e3:7.0f} ms  {n / med:6.1f} files/s  {med / n * 1e3:5.2f} ms/file  "
                f"CPU {cpu / n * 1e3:5.2f} ms/file  peak RSS +{peak:.0f} MiB  "
                f"(runs: {', '.join(f'{t * 1e3:.0f}' for t in walls)} ms)"
            )
        base, fast = (fn() for fn in fns.values())
        (wb, cb), (wf, cf) = medians.values()
        print(
            f"speed-up {wb / wf:.2f}x wall, {cb / cf:.2f}x CPU time   "
            f"max |batched - baseline| = {(base - fast).abs().max().item():.2e}"
        )


if __name__ == "__main__":
    main()
