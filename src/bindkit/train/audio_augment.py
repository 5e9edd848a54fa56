"""Waveform augmentation for audio training: band-limiting (8 kHz telephone), level, noise, reverberation, and short
words cut out at their natural length; and, after the loader, vocal tract length perturbation of the log-mel rows.

These run on 16 kHz waveforms *before* the loader (`bindkit.data.load_audio`), so the model trains on what inference
sees from real files. Like `augment.freq_mask`, every item's draws are a pure function of its int seed row, so a
run is the same on any machine and after a resume.

    waves = augment_waves(clips, spans, seeds=np.array([[seed, i] for i in range(len(clips))]))
    x = load_audio([(torch.from_numpy(w), 16000) for w in waves], pad="centre", ...)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bindkit.data.fbank import LOW_FREQ, _mel


def band_limit(wave: np.ndarray, sample_rate: int, rate: int = 8000) -> np.ndarray:
    """What a `rate` Hz channel (a telephone) keeps: every DFT bin at or above rate / 2 zeroed. wave: (..., N)."""
    spec = np.fft.rfft(wave, axis=-1)
    spec[..., np.fft.rfftfreq(wave.shape[-1], 1 / sample_rate) >= rate / 2] = 0
    return np.fft.irfft(spec, wave.shape[-1], axis=-1).astype(np.float32)


def change_level(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """wave x 10^(gain_db / 20), clipped to [-1, 1] (only a positive gain can clip)."""
    return np.clip(wave * np.float32(10 ** (gain_db / 20)), -1.0, 1.0).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator, ref_power: float | None = None,
              ) -> np.ndarray:  # fmt: skip
    """wave + white Gaussian noise whose mean power is exactly `ref_power` / 10^(snr_db / 10); `ref_power` defaults
    to the power of `wave` (pass the word's power for an SNR relative to the speech)."""
    power = float(np.mean(wave.astype(np.float64) ** 2)) if ref_power is None else ref_power
    noise = rng.standard_normal(wave.shape)
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / np.mean(noise**2))
    return (wave + noise).astype(np.float32)


def reverberate(wave: np.ndarray, rng: np.random.Generator, rt60: float, wet: float, sample_rate: int,
                ) -> np.ndarray:  # fmt: skip
    """wave convolved with a room (direct path + exponentially decaying noise tail, -60 dB at rt60, tail energy
    `wet` relative to the direct path), cut to the input length."""
    n = max(2, int(min(rt60, 0.6) * sample_rate))
    t = np.arange(n) / sample_rate
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.003 * sample_rate)] = 0.0
    ir *= wet / np.sqrt(np.sum(ir**2) + 1e-12)
    ir[0] = 1.0
    size = len(wave) + n - 1
    y = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(ir, size), size)[: len(wave)]
    return y.astype(np.float32)


def change_speed(
    wave: np.ndarray, span: tuple[int, int], factor: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """wave played `factor` times faster (linear-interpolation resampling: tempo, pitch and formants move together,
    like a shorter or longer vocal tract) and the word's span with it; a longer result is cut back to the input
    length around the word (a shorter one stays short: the loader pads it)."""
    n = max(2, int(len(wave) / factor))
    out = np.interp(np.arange(n) * factor, np.arange(len(wave)), wave).astype(np.float32)
    a, b = int(span[0] / factor), min(n, int(np.ceil(span[1] / factor)))
    if n > len(wave):  # keep len(wave) samples centred on the word
        start = min(max(0, (a + b - len(wave)) // 2), n - len(wave))
        out, a, b = out[start : start + len(wave)], max(0, a - start), min(len(wave), b - start)
    return out, (a, b)


def cut_word(wave: np.ndarray, span: tuple[int, int], margin: int) -> np.ndarray:
    """The word of a clip at its natural length: samples [start - margin, end + margin) of `wave`."""
    return wave[max(0, span[0] - margin) : span[1] + margin].copy()


@dataclass(frozen=True)
class WaveAug:
    """Probabilities and ranges of the waveform augmentations (each item draws its own)."""

    short: float = 0.5  # share cut to the word at its natural length (inference's short files)
    margin_s: tuple[float, float] = (0.0, 0.15)  # silence kept around a cut word, seconds
    telephone: float = 0.3  # share band-limited to 4 kHz (8 kHz sampling)
    level_db: tuple[float, float] = (-26.0, 6.0)  # gain range
    noise: float = 0.3  # share with extra white noise ...
    snr_db: tuple[float, float] = (10.0, 30.0)  # ... at an SNR (to the word's power) in this range
    reverb: float = 0.2  # share with an extra room
    speed: float = 0.0  # share played faster or slower (another speaker's pitch and formants) ...
    speed_range: tuple[float, float] = (0.8, 1.25)  # ... by a factor drawn log-uniformly in this range
    vtlp: float = 0.0  # share whose log-mel rows are warped in frequency (another vocal tract) ...
    vtlp_range: tuple[float, float] = (0.75, 1.33)  # ... by a factor drawn log-uniformly in this range
    sample_rate: int = 16000


def augment_wave(wave: np.ndarray, span: tuple[int, int], seed_row, aug: WaveAug = WaveAug()) -> np.ndarray:
    """One item's augmented waveform (may be shorter than the clip: a cut word); a pure function of `seed_row`."""
    rng = np.random.default_rng([int(v) for v in seed_row])
    u = rng.random(6)
    sr = aug.sample_rate
    if u[5] < aug.speed:
        lo, hi = np.log(aug.speed_range)
        wave, span = change_speed(wave, span, float(np.exp(rng.uniform(lo, hi))))
    word_power = float(np.mean(wave[span[0] : span[1]].astype(np.float64) ** 2)) + 1e-12
    if u[0] < aug.reverb:
        wave = reverberate(wave, rng, rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.8), sr)
    if u[1] < aug.noise:
        wave = add_noise(wave, rng.uniform(*aug.snr_db), rng, word_power)
    if u[2] < aug.telephone:
        wave = band_limit(wave, sr)
    if u[3] < aug.short:
        wave = cut_word(wave, span, int(rng.uniform(*aug.margin_s) * sr))
    return change_level(wave, rng.uniform(*aug.level_db))


def augment_waves(waves: np.ndarray, spans: np.ndarray, seeds: np.ndarray, aug: WaveAug = WaveAug(),
                  ) -> list[np.ndarray]:  # fmt: skip
    """`augment_wave` of every row of (n, N) clips with their (n, 2) word spans and (n, k) int seed rows."""
    return [
        augment_wave(w, (int(s[0]), int(s[1])), r, aug) for w, s, r in zip(waves, spans, seeds, strict=True)
    ]


def vtlp_factors(seeds: np.ndarray, aug: WaveAug) -> np.ndarray:
    """(n,) frequency-warp factors of (n, k) int seed rows, 1.0 for rows not warped; row r draws from (r0, r1, 31,
    r2, ...), a stream apart from `augment_wave`'s."""
    lo, hi = np.log(aug.vtlp_range)
    out = np.ones(len(seeds))
    for i, row in enumerate(seeds):
        rng = np.random.default_rng([int(row[0]), int(row[1]), 31, *(int(v) for v in row[2:])])
        u, a = rng.random(), float(np.exp(rng.uniform(lo, hi)))
        out[i] = a if u < aug.vtlp else 1.0
    return out


def warp_mel(x: torch.Tensor, alpha: torch.Tensor, sample_rate: int = 16000) -> torch.Tensor:
    """VTLP (Jaitly & Hinton 2013) on Kaldi log-mel rows (n, ..., mel, frames): row i's spectrum scaled in frequency
    by alpha[i] (> 1: higher formants and pitch), by linear interpolation between mel bins, edges held."""
    n, mel = x.shape[0], x.shape[-2]
    m_lo, m_hi = _mel(LOW_FREQ), _mel(0.5 * sample_rate)  # the filterbank's own mel scale
    delta = (m_hi - m_lo) / (mel + 1)  # the filters' spacing on the mel scale
    centre_hz = 700.0 * torch.expm1((m_lo + (torch.arange(mel) + 1.0) * delta) / 1127.0)  # (mel,)
    # (n, mel): the mel position each output bin reads from
    src_mel = 1127.0 * torch.log1p(centre_hz[None] / alpha.float()[:, None] / 700.0)
    idx = ((src_mel - m_lo) / delta - 1.0).clamp(0, mel - 1)
    lo = idx.floor().long()
    hi = (lo + 1).clamp(max=mel - 1)
    shape = (n,) + (1,) * (x.dim() - 3) + (mel, 1)
    w = (idx - lo).view(shape).to(x.dtype)

    def rows(ix: torch.Tensor) -> torch.Tensor:
        return torch.gather(x, x.dim() - 2, ix.view(shape).expand_as(x))

    return rows(lo) * (1 - w) + rows(hi) * w
