"""Kaldi-compatible log-mel filterbank in plain torch, batched over clips.

Matches torchaudio.compliance.kaldi.fbank as the official audio loader calls it (htk_compat, hanning window,
25 ms frames every 10 ms, dither 0, use_energy False, other options default): frames without edge padding,
per-frame DC removal, pre-emphasis 0.97 with the frame's first sample as its own predecessor, a symmetric Hann
window, zero padding to the next power of two, power spectrum, triangular filters on the Kaldi mel scale
1127*ln(1 + f/700) from 20 Hz to Nyquist, and log with the float32 epsilon as floor. The filters are built in
float32 in the same order as torchaudio and cached. Every clip of a batch shares one rfft and one banded mel
matmul; DC removal and pre-emphasis are folded into one pass (same math, float32 rounding in another order).
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


def _mel(freq: float) -> float:
    return 1127.0 * math.log(1.0 + freq / 700.0)


def _mel_t(freq: torch.Tensor) -> torch.Tensor:
    return 1127.0 * (1.0 + freq / 700.0).log()


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
    mel = _mel_t((sample_rate / n_fft) * torch.arange(n_fft / 2)).unsqueeze(0)  # (1, n_fft/2)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.max(torch.zeros(1), torch.min(up, down))  # (bins, n_fft/2)
    return banks.t().contiguous()


@lru_cache(maxsize=16)
def mel_blocks(
    num_mel_bins: int = 128, sample_rate: int = 16000
) -> list[tuple[int, int, int, int, torch.Tensor]]:
    """The filters in groups of 16 with the FFT bins they touch: `(f0, f1, b0, b1, weights (f1-f0, b1-b0))`.

    A triangle spans only a few bins, so multiplying each group by its own band does about an eighth of the dense
    matmul's work for the same sums (each mel value still adds every nonzero term of its filter).
    """
    banks = mel_banks(num_mel_bins, sample_rate)  # (bins, mel)
    blocks = []
    for f0 in range(0, num_mel_bins, 16):
        f1 = min(f0 + 16, num_mel_bins)
        rows = banks[:, f0:f1].gt(0).any(1).nonzero().flatten()
        b0, b1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 1)
        blocks.append((f0, f1, b0, b1, banks[b0:b1, f0:f1].t().contiguous()))
    return blocks


@lru_cache(maxsize=16)
def hann(window: int) -> torch.Tensor:
    """Symmetric Hann window (Kaldi's "hanning"); both end weights are exactly 0."""
    return torch.hann_window(window, periodic=False, dtype=torch.float32)


def _buffer(work: dict | None, name: str, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """A scratch tensor, reused from `work` across calls of one batch when the shape repeats.

    Fresh multi-megabyte tensors are page-faulted in on every call (the allocator hands big blocks back to the
    OS), which costs more than the FFT itself; reusing them keeps the batched path compute-bound.
    """
    if work is None:
        return torch.empty(shape, dtype=dtype)
    if name not in work or work[name].shape != shape:
        work[name] = torch.empty(shape, dtype=dtype)
    return work[name]


def log_fbank(
    clips: torch.Tensor, num_mel_bins: int = 128, sample_rate: int = 16000, work: dict | None = None
) -> torch.Tensor:
    """Log-mel energies `(M, num_mel_bins, frames)` of `(M, N)` float32 clips (N >= one window).

    Pass the same dict as `work` to successive calls to reuse scratch memory; the result then lives in it too
    and is overwritten by the next call.
    """
    window, hop, n_fft = frame_geometry(sample_rate)
    if clips.shape[-1] < window:
        raise ValueError(f"clips have {clips.shape[-1]} samples, fewer than one {window}-sample frame")
    frames = clips.unfold(-1, window, hop)  # (M, F, window), a strided view
    m, f = frames.shape[:2]
    mean = frames.mean(-1, keepdim=True)  # (M, F, 1) per-frame DC offset
    # Pre-emphasis of (x - mean) is (x[t] - 0.97 x[t-1]) - 0.03 mean for t >= 1; t = 0 has Hann weight 0.
    emph = torch.add(clips[:, 1:], clips[:, :-1], alpha=-PREEMPHASIS).unfold(-1, window - 1, hop)
    y = _buffer(work, "frames", (m, f, n_fft))  # zero-padded frames for the FFT
    y[..., 0] = 0
    y[..., window:] = 0
    torch.sub(emph, (1.0 - PREEMPHASIS) * mean, out=y[..., 1:window]).mul_(hann(window)[1:])
    spec = torch.fft.rfft(y).view(m * f, -1)  # (M*F, n_fft/2 + 1)
    parts = torch.view_as_real(spec).square_()  # (M*F, bins, 2): re^2, im^2
    power = torch.add(parts[..., 0], parts[..., 1], out=_buffer(work, "power", spec.shape))
    mel = _buffer(work, "mel", (num_mel_bins, m * f)).zero_()  # a filter with no bins stays 0: log floor
    for f0, f1, b0, b1, w in mel_blocks(num_mel_bins, sample_rate):
        torch.mm(w, power[:, b0:b1].t(), out=mel[f0:f1])
    mel = mel.clamp_min_(torch.finfo(torch.float32).eps).log_()
    return mel.view(num_mel_bins, m, f).transpose(0, 1)  # (M, mel, F)
