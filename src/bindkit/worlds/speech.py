"""Audio: a spoken number word from the shipped speech pool, with level, noise and reverberation added.

The pool (`bindkit/assets/speech`, made once by `scripts/make_speech_pool.py` with espeak-ng, flite and festival)
holds every voice's ten words in Ogg/Vorbis files plus `manifest.json`; it is decoded once per process. Each voice
identity has a split: `train`, `test` (held-out voices of the engines seen in training) or `engine` (the held-out
engine, festival: never in training, scored as its own group). At sampling time each clip gets a speed change
(resampling by 0.9-1.1, which also shifts pitch), a seeded synthetic room impulse response (direct sound plus an
exponentially decaying noise tail of random RT60), a smooth random EQ (+-4 dB per cosine term, like a different
microphone), a level, a random offset in a fixed-length clip, and background noise (white, pink or brown, a quarter
with mains hum) at a random SNR.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import soundfile as sf

NOISE_KINDS = ["white", "pink", "brown"]


@dataclass(frozen=True)
class SpeechPool:
    """Decoded recordings and their metadata."""

    sample_rate: int
    waves: tuple[np.ndarray, ...]  # float32 mono per recording
    digit: np.ndarray  # (R,) int
    voice: tuple[str, ...]  # (R,) voice identity per recording
    voices: dict[str, str]  # voice identity -> split
    records: tuple[dict, ...]  # manifest entries

    def index(self) -> dict[tuple[str, int], int]:
        """(voice, digit) -> recording index."""
        return {(v, int(d)): i for i, (v, d) in enumerate(zip(self.voice, self.digit, strict=True))}


def pool_dir():
    """The folder of the shipped pool (a Traversable inside the package)."""
    return resources.files("bindkit") / "assets" / "speech"


@lru_cache(maxsize=1)
def load_manifest() -> dict:
    """The pool's manifest.json (cached)."""
    return json.loads((pool_dir() / "manifest.json").read_text())


def split_voices(split: str) -> list[str]:
    """Voice identities of a split, sorted, from the manifest alone (no decoding)."""
    return sorted(v["voice"] for v in load_manifest()["voices"] if v["split"] == split)


def voice_engines() -> dict[str, str]:
    """Voice identity -> its engine (espeak-ng, flite, festival); the first pool's entries are espeak-ng."""
    return {v["voice"]: v.get("engine", "espeak-ng") for v in load_manifest()["voices"]}


def heldout_engine() -> str:
    """The engine whose voices form the `engine` split (never in training)."""
    return str(load_manifest().get("heldout_engine", ""))


@lru_cache(maxsize=1)
def load_pool() -> SpeechPool:
    """Decode every file of the pool once per process (about a second)."""
    folder, manifest = pool_dir(), load_manifest()
    cache, waves = {}, []
    for rec in manifest["recordings"]:
        if rec["file"] not in cache:
            with (folder / rec["file"]).open("rb") as f:
                data, sr = sf.read(f, dtype="float32")
            if sr != manifest["sample_rate"] or data.ndim != 1:
                raise ValueError(
                    f"speech pool file {rec['file']}: expected mono {manifest['sample_rate']} Hz"
                )
            cache[rec["file"]] = data
        waves.append(cache[rec["file"]][rec["start"] : rec["start"] + rec["frames"]].copy())
    return SpeechPool(
        sample_rate=int(manifest["sample_rate"]),
        waves=tuple(waves),
        digit=np.array([r["digit"] for r in manifest["recordings"]]),
        voice=tuple(r["voice"] for r in manifest["recordings"]),
        voices={v["voice"]: v["split"] for v in manifest["voices"]},
        records=tuple(manifest["recordings"]),
    )


@lru_cache(maxsize=4)
def noise_bank(sample_rate: int, seconds: float = 20.0) -> dict[str, np.ndarray]:
    """Unit-RMS coloured noises to crop from (a fixed seed: the bank is part of the world's definition)."""
    rng = np.random.default_rng(20240)
    n = int(seconds * sample_rate)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 20.0)
    out = {}
    for kind, power in zip(NOISE_KINDS, (0.0, 0.5, 1.0), strict=True):
        x = np.fft.irfft(spec / f**power, n)
        out[kind] = (x / np.sqrt(np.mean(x**2))).astype(np.float32)
    return out


def impulse_response(rng: np.random.Generator, rt60: float, wet: float, sample_rate: int) -> np.ndarray:
    """Direct path + pre-delay + exponentially decaying noise tail (-60 dB at rt60)."""
    n = int(min(rt60, 0.6) * sample_rate)
    t = np.arange(n, dtype=np.float32) / sample_rate
    tail = rng.standard_normal(n, np.float32) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * sample_rate)] = 0.0  # early reflections arrive after a few ms
    tail *= wet / np.sqrt(np.sum(tail**2) + 1e-12)
    tail[0] = 1.0
    return tail


def speak(pool: SpeechPool, recording: np.ndarray, rngs, seconds: float, sample_rate: int) -> np.ndarray:
    """Clips (n, seconds * sample_rate) float32 of the given recordings with this instance's acoustics."""
    return speak_with_spans(pool, recording, rngs, seconds, sample_rate)[0]


def speak_with_spans(pool: SpeechPool, recording: np.ndarray, rngs, seconds: float, sample_rate: int,
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """`speak`'s clips and (n, 2) int sample spans [start, end) of the (dry, stretched) word inside each clip."""
    if sample_rate != pool.sample_rate:
        raise ValueError(
            f"the speech pool is {pool.sample_rate} Hz; sample_rate={sample_rate} is not supported"
        )
    length = int(round(seconds * sample_rate))
    p = np.array([r.uniform(0, 1, 11) for r in rngs])  # (n, 11)
    words = [_stretch(pool.waves[k], 0.9 + 0.2 * q[0]) for k, q in zip(recording, p, strict=True)]
    irs = [
        impulse_response(r, 0.1 + 0.4 * q[1], 0.2 + 0.6 * q[2], sample_rate)
        for r, q in zip(rngs, p, strict=True)
    ]
    wet = _convolve(words, irs, eq=8.0 * (p[:, 8:11] - 0.5))  # +-4 dB per cosine term
    out = np.zeros((len(words), length), np.float32)
    spans = np.zeros((len(words), 2), np.int64)
    level = 10 ** ((-32 + 18 * p[:, 3]) / 20)  # speech RMS after the gain (dBFS -32..-14)
    for i, (w, q) in enumerate(zip(wet, p, strict=True)):
        w = w[:length]
        start = int(q[4] * (length - len(w)))
        out[i, start : start + len(w)] = w * (level[i] / (np.sqrt(np.mean(w**2)) + 1e-9))
        spans[i] = start, min(length, start + len(words[i]))
    out += _noise(rngs, p, level, length, sample_rate)
    return np.clip(out, -1.0, 1.0, out=out), spans


def _noise(rngs, p: np.ndarray, level: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Background (n, length): a crop of white/pink/brown noise at SNR 10-35 dB, a quarter with mains hum."""
    bank = noise_bank(sample_rate)
    t = np.arange(length) / sample_rate
    hum = {
        f: (np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 3 * f * t))).astype(np.float32)
        for f in (50, 60)
    }
    out = np.empty((len(p), length), np.float32)
    for i, (r, q) in enumerate(zip(rngs, p, strict=True)):
        kind = NOISE_KINDS[int(q[5] * 3)]
        offset = r.integers(0, len(bank[kind]) - length)
        out[i] = bank[kind][offset : offset + length] * (level[i] / 10 ** ((10 + 25 * q[6]) / 20))
        if q[7] < 0.25:
            out[i] += 0.05 * level[i] * hum[50 if q[7] < 0.125 else 60]
    return out


def _stretch(wave: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster by linear-interpolation resampling (tempo and pitch change together)."""
    n = max(2, int(len(wave) / factor))
    return np.interp(np.arange(n) * factor, np.arange(len(wave)), wave).astype(np.float32)


def _convolve(
    words: list[np.ndarray], irs: list[np.ndarray], eq: np.ndarray, chunk: int = 64
) -> list[np.ndarray]:
    """Each word convolved with its room and a smooth random EQ (a microphone), by float32 FFTs in chunks.

    eq (n, K): the EQ's gain in dB is sum_k eq_k cos(pi k f / nyquist).
    """
    out = []
    for lo in range(0, len(words), chunk):
        ws, hs = words[lo : lo + chunk], irs[lo : lo + chunk]
        nfft = _fast_size(max(len(w) for w in ws) + max(len(h) for h in hs) - 1)
        w = np.zeros((len(ws), nfft), np.float32)
        h = np.zeros((len(ws), nfft), np.float32)
        for i, (a, b) in enumerate(zip(ws, hs, strict=True)):
            w[i, : len(a)], h[i, : len(b)] = a, b
        f = np.linspace(0.0, 1.0, nfft // 2 + 1)
        k = np.arange(1, eq.shape[1] + 1)[:, None]
        gain = 10 ** ((eq[lo : lo + chunk, :, None] * np.cos(np.pi * k * f)).sum(1) / 20)  # (c, F)
        spec = np.fft.rfft(w, axis=1) * np.fft.rfft(h, axis=1) * gain.astype(np.float32)
        y = np.fft.irfft(spec, nfft, axis=1)
        out += [
            y[i, : len(a) + len(b) - 1].astype(np.float32)
            for i, (a, b) in enumerate(zip(ws, hs, strict=True))
        ]
    return out


def _fast_size(n: int) -> int:
    """The smallest 2^a * 3^b * 5^c >= n (fast FFT lengths)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35 * (1 << max(0, (n - 1) // p35).bit_length())  # smallest power-of-two multiple >= n
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best
