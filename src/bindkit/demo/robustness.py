"""Audio robustness on the held-out voices: the test clips as recorded, trimmed to the word, band-limited to 8 kHz
(telephone), with white noise at 20 dB SNR (to the word's power), 20 dB quieter; and the same test instances spoken
by the held-out engine's voices (never in training).

Every variant is made from the test split's waveforms in memory and goes through `bindkit.data.load` with the saved
model's config, the path a user's files take (the model's `preprocess` decides how short clips are padded). Scores
are emergent zero-shot top-1 against the anchor's text prompts, overall and per voice engine.

    rows = audio_robustness(model, cls, data.test, data.engine_test)
"""

from __future__ import annotations

import numpy as np
import torch

from bindkit.data import load
from bindkit.evaluate import zero_shot
from bindkit.model import ImageBind
from bindkit.train.audio_augment import add_noise, band_limit, change_level, cut_word
from bindkit.worlds import Instances
from bindkit.worlds.speech import voice_engines

from .scores import embed

ROWS = ("as recorded", "trimmed to the word", "8 kHz band-limited", "20 dB SNR noise", "-20 dB level")


def variants(test: Instances, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """The robustness rows' waveforms of the test clips (spans: where each word lies in its clip)."""
    if test.audio is None or test.audio_span is None:
        raise ValueError(
            "audio_robustness needs test instances with audio rendered (world.render(..., 'audio'))"
        )
    spans = [(int(a), int(b)) for a, b in test.audio_span]
    power = [
        float(np.mean(w[a:b].astype(np.float64) ** 2)) for w, (a, b) in zip(test.audio, spans, strict=True)
    ]
    rngs = [np.random.default_rng([seed, 20, i]) for i in range(len(test))]
    return {
        "as recorded": list(test.audio),
        "trimmed to the word": [cut_word(w, s, 0) for w, s in zip(test.audio, spans, strict=True)],
        "8 kHz band-limited": [band_limit(w, test.sample_rate) for w in test.audio],
        "20 dB SNR noise": [
            add_noise(w, 20.0, r, p) for w, r, p in zip(test.audio, rngs, power, strict=True)
        ],
        "-20 dB level": [change_level(w, -20.0) for w in test.audio],
    }


def score_waves(model: ImageBind, cls: torch.Tensor, waves: list[np.ndarray], sample_rate: int, y: np.ndarray,
                groups: list[str]) -> dict[str, float]:  # fmt: skip
    """Emergent top-1 (%) of waveforms loaded as the model's config says: overall and per group (engine)."""
    x = load(
        "audio",
        [(torch.from_numpy(np.ascontiguousarray(w)), sample_rate) for w in waves],
        config=model.config,
    )
    emb = embed(model, "audio", x)
    out = {"top1": zero_shot(emb, y, cls)["top1"], "n": len(y)}
    g = np.asarray(groups)
    for name in sorted(set(groups)):
        keep = np.nonzero(g == name)[0]
        out[name] = zero_shot(emb[torch.from_numpy(keep)], y[keep], cls)["top1"]
    return out


def audio_robustness(model: ImageBind, cls: torch.Tensor, test: Instances, engine_test: Instances | None,
                     seed: int = 0) -> dict[str, dict]:  # fmt: skip
    """Row name -> {top1, n, per-engine top1}: the ROWS on the held-out voices, then the held-out engine's rows."""
    engines = voice_engines()
    y = np.asarray(test.digit)
    out = {name: score_waves(model, cls, waves, test.sample_rate, y, [engines[v] for v in test.voice])
           for name, waves in variants(test, seed).items()}  # fmt: skip
    if engine_test is not None and engine_test.audio is not None:
        held = variants(engine_test, seed)
        for name in ("as recorded", "trimmed to the word"):
            out[f"held-out engine, {name}"] = score_waves(model, cls, held[name], engine_test.sample_rate,
                                                          np.asarray(engine_test.digit),
                                                          [engines[v] for v in engine_test.voice])  # fmt: skip
    return out


def robustness_md(rows: dict[str, dict]) -> list[str]:
    """The robustness table: one line per row, top-1 overall and per voice engine."""
    engines = sorted({k for r in rows.values() for k in r if k not in ("top1", "n")})
    lines = [
        "| audio input | n | top-1 | " + " | ".join(engines) + " |",
        "|---|---|---|" + "---|" * len(engines),
    ]
    for name, r in rows.items():
        cells = " | ".join(f"{r[e]:.1f}" if e in r else "–" for e in engines)
        lines.append(f"| {name} | {r['n']} | {r['top1']:.1f} | {cells} |")
    return lines
