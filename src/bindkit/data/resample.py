"""Windowed-sinc resampling in plain torch, numerically the same as torchaudio's default resampler.

torchaudio.functional.resample (sinc_interp_hann, lowpass_filter_width=6, rolloff=0.99) reduces both rates by
their gcd to (orig, new), builds `new` polyphase filters of length 2*width + orig and runs them as one strided
conv1d. We rebuild the same kernel from the math (in the waveform's dtype, like torchaudio) and cache it per
rate pair. `resample_many` packs many signals of one rate into a single zero-separated buffer so that a whole
rate group is resampled by one conv, with exactly the per-signal result (each signal sees only its own zeros).
"""

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


def _reduced(orig_freq: int, new_freq: int) -> tuple[int, int]:
    g = math.gcd(int(orig_freq), int(new_freq))
    return int(orig_freq) // g, int(new_freq) // g


@lru_cache(maxsize=64)
def sinc_kernel(
    orig_freq: int, new_freq: int, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, int]:
    """Polyphase Hann-windowed sinc filters `(new, 1, 2*width + orig)` for the gcd-reduced rates, and `width`."""
    orig, new = _reduced(orig_freq, new_freq)
    base = min(orig, new) * ROLLOFF  # cutoff just below the lower Nyquist, in units of the reduced rates
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base)
    # Time (in input samples, scaled by the cutoff) from output phase j to each input tap: (new, 1, taps).
    idx = torch.arange(-width, width + orig, dtype=dtype)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=dtype)[:, None, None] / new + idx
    t = (t * base).clamp_(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.tensor(1.0, dtype=dtype), t.sin() / t)
    kernel = kernel * (window * (base / orig))
    return kernel, width


def output_length(length: int, orig_freq: int, new_freq: int) -> int:
    """Samples after resampling: ceil(new*length/orig), evaluated like torchaudio (a float32 scalar tensor)."""
    orig, new = _reduced(orig_freq, new_freq)
    return math.ceil(float(np.float32(new * length / orig)))


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """Resample `[..., N]` from orig_freq to new_freq (identity when equal)."""
    if int(orig_freq) == int(new_freq):
        return waveform
    return resample_many([waveform], orig_freq, new_freq)[0]


def resample_many(waveforms: list[torch.Tensor], orig_freq: int, new_freq: int) -> list[torch.Tensor]:
    """Resample several `[..., N_i]` waveforms of one rate with a single conv over a packed buffer."""
    if int(orig_freq) == int(new_freq):
        return list(waveforms)
    orig, new = _reduced(orig_freq, new_freq)
    dtype = waveforms[0].dtype
    kernel, width = sinc_kernel(int(orig_freq), int(new_freq), dtype)
    rows = [w.reshape(-1, w.shape[-1]) for w in waveforms]
    # Each row starts (width zeros before its first sample) on a multiple of `orig`, so the strided conv's
    # phase matches a conv over that row alone; at least width + orig zeros follow before the next row.
    starts, pos = [], 0
    for r in rows:
        for _ in range(r.shape[0]):
            starts.append(pos)
            pos += -(-(r.shape[1] + width + orig) // orig) * orig
    buf = torch.zeros(pos + width + orig, dtype=dtype)
    i = 0
    for r in rows:
        for c in range(r.shape[0]):
            buf[starts[i] + width : starts[i] + width + r.shape[1]] = r[c]
            i += 1
    out = F.conv1d(buf[None, None], kernel, stride=orig)[0]  # (new, blocks)
    out = out.t().reshape(-1)  # block b, phase j -> output sample b*new + j
    results, i = [], 0
    for w, r in zip(waveforms, rows, strict=True):
        n_out = output_length(r.shape[1], orig_freq, new_freq)
        chans = [out[starts[i + c] // orig * new :][:n_out] for c in range(r.shape[0])]
        results.append(torch.stack(chans).reshape(*w.shape[:-1], n_out))
        i += r.shape[0]
    return results
