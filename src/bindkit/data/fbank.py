"""Kaldi-compatible log-mel filterbank in plain torch, batched over clips.

Matches torchaudio.compliance.kaldi.fbank as the official audio loader calls it (htk_compat, hanning window,
25 ms frames every 10 ms, dither 0, use_energy False, other options default): frames without edge padding,
per-frame DC removal, pre-emphasis 0.97 with the frame's first sample as its own predecessor, a symmetric Hann
window, zero padding to the next power of two, power spectrum, triangular filters on the Kaldi mel scale
1127*ln(1 + f/700) from 20 Hz to Nyquist, and log with the float32 epsilon as floor. The filters are built in
float32 in the same order as torchaudio and cached, and every clip of a batch shares one rfft and one matmul.
"""

import math
from functools import lru_cache

import torch

PREEMPHASIS = 0.97
LOW_FREQ = 20.0


def frame_geometry(sample_rate: int = 16000) -> tuple[int, int, int]:
    """(window, hop, n_fft) in samples for Kaldi's 25 ms / 10 ms frames at `sample_rate`."""
    window = int(sample_rate * 25.0 * 0.001)
    hop = int(sample_rate * 10.0 * 0.001)
    return window, hop, 1 << (window - 1).bit_length()


def num_frames(num_samples: int, sample_rate: int = 16000) -> int:
    """Frames Kaldi cuts from `num_samples` with snip_edges (0 when shorter than one window)."""
    window, hop, _ = frame_geometry(sample_rate)
    return 0 if num_samples < window else 1 + (num_samples - window) // hop


def _mel(freq):
    return (
        1127.0 * math.log(1.0 + freq / 700.0)
        if isinstance(freq, float)
        else 1127.0 * (1.0 + freq / 700.0).log()
    )


@lru_cache(maxsize=16)
def mel_banks(num_mel_bins: int = 128, sample_rate: int = 16000) -> torch.Tensor:
    """Triangular Kaldi mel filters `(n_fft // 2, num_mel_bins)` (the Nyquist bin has weight 0 and is dropped)."""
    _, _, n_fft = frame_geometry(sample_rate)
    if num_mel_bins < 3:
        raise ValueError(f"num_mel_bins must be at least 3, got {num_mel_bins}")
    mel_low, mel_high = _mel(LOW_FREQ), _mel(0.5 * sample_rate)
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    b = torch.arange(num_mel_bins).unsqueeze(1)  # (bins, 1), float32 math below like torchaudio
    left, center, right = mel_low + b * delta, mel_low + (b + 1.0) * delta, mel_low + (b + 2.0) * delta
    mel = _mel((sample_rate / n_fft) * torch.arange(n_fft / 2)).unsqueeze(0)  # (1, n_fft/2)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))  # (bins, n_fft/2)
    return banks.t().contiguous()


@lru_cache(maxsize=16)
def hann(window: int) -> torch.Tensor:
    """Symmetric Hann window (Kaldi's "hanning")."""
    return torch.hann_window(window, periodic=False, dtype=torch.float32)


def log_fbank(clips: torch.Tensor, num_mel_bins: int = 128, sample_rate: int = 16000) -> torch.Tensor:
    """Log-mel energies `(M, frames, num_mel_bins)` of `(M, N)` float32 clips (N >= one window)."""
    window, hop, n_fft = frame_geometry(sample_rate)
    if clips.shape[-1] < window:
        raise ValueError(f"clips have {clips.shape[-1]} samples, fewer than one {window}-sample frame")
    frames = clips.unfold(-1, window, hop)  # (M, F, window), a strided view
    frames = frames - frames.mean(-1, keepdim=True)
    prev = torch.cat(
        [frames[..., :1], frames[..., :-1]], dim=-1
    )  # each frame's first sample is its own predecessor
    frames = (frames - PREEMPHASIS * prev).mul_(hann(window))
    power = torch.fft.rfft(frames, n=n_fft).abs().pow_(2)  # (M, F, n_fft/2 + 1)
    mel = power[..., : n_fft // 2] @ mel_banks(num_mel_bins, sample_rate)  # (M, F, bins)
    return mel.clamp_min_(torch.finfo(torch.float32).eps).log_()
