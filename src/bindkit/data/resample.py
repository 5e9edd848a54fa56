"""Windowed-sinc resampling in plain torch, numerically the same as torchaudio's default resampler.

torchaudio.functional.resample (sinc_interp_hann, lowpass_filter_width=6, rolloff=0.99) reduces both rates by
their gcd to (orig, new), builds `new` polyphase filters of length 2*width + orig and runs them as one strided
conv1d. We rebuild the same kernel from the math (in the waveform's dtype, like torchaudio) and cache it per
rate pair. `resample_many` lays the signals of one rate end to end in zero-separated buffers of about PIECE
samples and runs the strided conv over each as a few banded matmuls (`_banded_plan`); every signal sees only
its own zeros, so the result is the per-signal one (on the fixtures, bit for bit).
"""

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99
PIECE = 1 << 18  # samples per packed buffer / floats per matmul operand: ~1 MiB, cache-friendly


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


@lru_cache(maxsize=64)
def _banded_plan(orig_freq: int, new_freq: int, dtype: torch.dtype) -> tuple[int, int, list]:
    """The strided conv as a blocked matmul: `(R, span, [(c0, c1, lo, hi, weights (hi-lo, c1-c0)), ...])`.

    One matmul row holds R consecutive conv steps (R * orig input samples, `span` with the filter overhang) and
    yields R * new outputs. A phase's filter is nonzero over only ~2 * width taps of its 2 * width + orig, so
    columns are taken 16 at a time against just the input range they touch: the same sums, with the taps
    dropped being those beyond the Hann window's edge (below 1e-12 of the peak), at a fraction of the work.
    """
    orig, new = _reduced(orig_freq, new_freq)
    kernel = sinc_kernel(orig_freq, new_freq, dtype)[0][:, 0]  # (new, K)
    taps = kernel.shape[1]
    reps = -(-128 // new)  # enough conv steps per row for ~128 output columns
    span = (reps - 1) * orig + taps
    dense = torch.zeros(reps * new, span, dtype=dtype)  # (R*new, span): the filters shifted once per step
    for q in range(reps):
        dense[q * new : (q + 1) * new, q * orig : q * orig + taps] = kernel
    keep = dense.abs() > 1e-12 * dense.abs().max()
    blocks = []
    for c0 in range(0, reps * new, 16):
        c1 = min(c0 + 16, reps * new)
        cols = keep[c0:c1].any(0).nonzero().flatten()
        lo, hi = int(cols[0]), int(cols[-1]) + 1
        blocks.append((c0, c1, lo, hi, dense[c0:c1, lo:hi].t().contiguous()))
    return reps, span, blocks


def _strided_conv(buf: torch.Tensor, orig_freq: int, new_freq: int, num_steps: int) -> torch.Tensor:
    """`conv1d(buf, kernel, stride=orig)` flattened to output samples, for the first `num_steps` steps."""
    orig, new = _reduced(orig_freq, new_freq)
    reps, span, blocks = _banded_plan(int(orig_freq), int(new_freq), buf.dtype)
    rows = -(-num_steps // reps)
    need = (rows - 1) * reps * orig + span
    if buf.shape[0] < need:
        buf = F.pad(buf, (0, need - buf.shape[0]))
    windows = buf[:need].unfold(0, span, reps * orig)  # (rows, span), overlapping view
    out = buf.new_empty(rows, reps * new)
    step = max(1, PIECE // span)  # rows per matmul: temporaries stay small and cache-resident
    for r0 in range(0, rows, step):
        x = windows[r0 : r0 + step].contiguous()
        for c0, c1, lo, hi, w in blocks:  # BLAS writes each column block in place (row stride R*new)
            torch.mm(x[:, lo:hi], w, out=out[r0 : r0 + step, c0:c1])
    return out.view(-1)  # row r, column q*new + j -> output sample (r*reps + q)*new + j


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
    """Resample several `[..., N_i]` waveforms of one rate, packed into a few shared matmuls."""
    if int(orig_freq) == int(new_freq):
        return list(waveforms)
    signals = [row for w in waveforms for row in w.reshape(-1, w.shape[-1])]
    outs, piece, size = [], list[torch.Tensor](), 0
    for x in signals + [None]:  # greedily pack signals into pieces of about PIECE samples
        if piece and (x is None or size + x.shape[0] > PIECE):
            outs += _resample_packed(piece, int(orig_freq), int(new_freq))
            piece, size = [], 0
        if x is not None:
            piece.append(x)
            size += x.shape[0]
    results, i = [], 0
    for w in waveforms:
        c = w.reshape(-1, w.shape[-1]).shape[0]
        rows = outs[i][None] if c == 1 else torch.stack(outs[i : i + c])  # mono: a view, no copy
        results.append(rows.reshape(*w.shape[:-1], -1))
        i += c
    return results


def _resample_packed(signals: list[torch.Tensor], orig_freq: int, new_freq: int) -> list[torch.Tensor]:
    """Resample 1-D signals laid end to end in one zero-separated buffer; exactly as one by one."""
    orig, new = _reduced(orig_freq, new_freq)
    width = sinc_kernel(orig_freq, new_freq, signals[0].dtype)[1]
    # Each signal's padded start (width zeros before its first sample) sits on a multiple of `orig`, so the
    # strided conv's phase matches a conv over that signal alone; width + orig zeros follow before the next.
    starts, pos = [], 0
    for x in signals:
        starts.append(pos)
        pos += -(-(x.shape[0] + width + orig) // orig) * orig
    buf = signals[0].new_zeros(pos + width + orig)
    for start, x in zip(starts, signals, strict=True):
        buf[start + width : start + width + x.shape[0]] = x
    out = _strided_conv(buf, orig_freq, new_freq, pos // orig)  # conv step b, phase j -> sample b*new + j
    return [
        out[start // orig * new :][: output_length(x.shape[0], orig_freq, new_freq)]
        for start, x in zip(starts, signals, strict=True)
    ]
