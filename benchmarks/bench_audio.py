"""Audio loading speed: batched `load_audio` vs a per-file, per-clip loop doing the same work.

Generates 200 five-second files at mixed sample rates (8, 16, 22.05, 44.1, 48 kHz; wav and flac; mono and
stereo) in a temp dir. The baseline has the official loader's structure: per file decode, resample (kernel built
per call, as torchaudio does), then per clip an in-place mean removal and a Kaldi fbank (mel filters built per
call), transpose, pad, normalise, stack. Prints files/s (median of repeats), the ratio, peak RSS above the
starting RSS for each, and the largest output difference between the two.

    python benchmarks/bench_audio.py [--files 200] [--repeats 5]
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
from bindkit.data.fbank import frame_geometry, hann, mel_banks
from bindkit.data.resample import output_length, sinc_kernel

RATES = [8000, 16000, 22050, 44100, 48000]


def make_files(folder: Path, n: int, seconds: float = 5.0) -> list[Path]:
    """n files cycling through rates and formats: chirps plus noise, every third one stereo."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        sr, ext = RATES[i % len(RATES)], ("wav", "flac")[(i // len(RATES)) % 2]
        t = np.arange(int(sr * seconds)) / sr
        x = 0.3 * np.sin(2 * np.pi * (200 + 300 * i % 2000) * t * (1 + t)) + 0.05 * rng.standard_normal(t.size)
        x = np.stack([x, 0.5 * x]) if i % 3 == 0 else x[None]
        p = folder / f"a{i:03d}_{sr}.{ext}"
        sf.write(p, x.T.astype(np.float32), sr, subtype="PCM_16")
        paths.append(p)
    return paths


# ---------------------------------------------------------------- baseline: the official loader's structure
def baseline_resample(w: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    kernel, width = sinc_kernel.__wrapped__(orig, new, w.dtype)  # rebuilt per call, as torchaudio does
    g = np.gcd(orig, new)
    x = F.pad(w, (width, width + orig // g))
    y = F.conv1d(x[:, None], kernel, stride=orig // g)  # (C, new, blocks)
    return y.transpose(1, 2).reshape(w.shape[0], -1)[:, : output_length(w.shape[-1], orig, new)]


def baseline_fbank(clip: torch.Tensor) -> torch.Tensor:
    window, hop, n_fft = frame_geometry(16000)
    frames = clip[0].unfold(0, window, hop)  # (F, 400), channel 0
    frames = frames - frames.mean(1, keepdim=True)
    prev = F.pad(frames.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)[:, :-1]
    frames = (frames - 0.97 * prev) * torch.hann_window(window, periodic=False)
    frames = F.pad(frames, (0, n_fft - window))
    power = torch.fft.rfft(frames).abs().pow(2)
    banks = F.pad(mel_banks.__wrapped__(128, 16000).t(), (0, 1))  # (128, 257), rebuilt per call
    return torch.mm(power, banks.t()).clamp_min(torch.finfo(torch.float32).eps).log()


def baseline_load(paths: list[Path]) -> torch.Tensor:
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
            fb = baseline_fbank(clip).t()  # (128, frames)
            fb = F.pad(fb, (0, 204 - fb.shape[1])) if fb.shape[1] < 204 else fb[:, :204]
            clips.append(((fb - -4.268) / 9.138)[None])
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


def measure(fn, repeats: int) -> tuple[list[float], float, torch.Tensor]:
    fn()  # warm-up: thread pool, FFT plans, page cache
    times, peak = [], 0.0
    for _ in range(repeats):
        with PeakRSS() as mem:
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
        peak = max(peak, mem.delta)
        del out
    return times, peak, fn()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.files)
        print(f"{len(paths)} five-second files, rates {RATES}, wav+flac, torch threads {torch.get_num_threads()}")
        results = {}
        for name, fn in [("baseline per-file loop", lambda: baseline_load(paths)), ("load_audio batched", lambda: load_audio(paths))]:
            times, peak, out = measure(fn, args.repeats)
            med = statistics.median(times)
            results[name] = (med, out)
            print(
                f"{name:24s} median {med * 1e3:8.1f} ms  {len(paths) / med:7.1f} files/s  "
                f"{med / len(paths) * 1e3:5.2f} ms/file  peak RSS +{peak:.0f} MiB  "
                f"(runs: {', '.join(f'{t * 1e3:.0f}' for t in times)} ms)"
            )
        (tb, ob), (tf, of) = results.values()
        print(f"speed-up {tb / tf:.2f}x   max |batched - baseline| = {(ob - of).abs().max().item():.2e}")


if __name__ == "__main__":
    main()
