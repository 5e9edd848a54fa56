"""Scoring the demo on its held-out test split with `bindkit.evaluate`'s protocols.

Emergent zero-shot (every modality against the text prompts of the image-text anchor), the text-paired comparison
row, cross-modal retrieval (relevant = same digit) for every ordered pair of modalities, few-shot linear probes and
an embedding-arithmetic query (the surface seen in an image + the digit spoken in a clip).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bindkit.data import load, tokenize
from bindkit.evaluate import class_embeddings as evaluate_class_embeddings
from bindkit.evaluate import few_shot, retrieval, settings_for, zero_shot
from bindkit.model import ImageBind
from bindkit.worlds.captions import PROMPT_TEMPLATES, WORDS

from .arithmetic import arithmetic_query, arithmetic_table
from .settings import BOUND

__all__ = ["arithmetic_query", "arithmetic_table", "class_embeddings", "embed", "few_shot_table", "retrieval_matrix",
           "trained_together", "video_clip_table", "zero_shot_table"]  # fmt: skip


@torch.no_grad()
def embed(model: ImageBind, modality: str, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Unit embeddings (N, D) of one modality's inputs (`image`/`video` go to vision), in batches."""
    model.eval()
    return torch.cat([model.encode({modality: x[i : i + batch]})[modality] for i in range(0, len(x), batch)])


def class_embeddings(model: ImageBind) -> torch.Tensor:
    """(C, D) digit class embeddings by `bindkit.evaluate`'s recipe, from the world's prompt templates (the ones
    the run's `eval/templates.txt` holds), so the demo's classifier is `bindkit eval`'s."""
    ctx = model.config.encoders["text"].input_shape[0]
    encode_text = lambda texts: embed(model, "text", tokenize(texts, context_length=ctx))  # noqa: E731
    emb, _ = evaluate_class_embeddings(encode_text, [[w] for w in WORDS], PROMPT_TEMPLATES)
    return emb


def zero_shot_table(emb: dict[str, torch.Tensor], cls: torch.Tensor, y: np.ndarray,
                    paired: tuple[dict[str, torch.Tensor], torch.Tensor] | None = None) -> dict[str, dict]:  # fmt: skip
    """Per modality: emergent top-1/top-5, in %; with `paired` (the text-paired model's embeddings and its class
    embeddings), its top-1 for the bound modalities and the gap."""
    out = {}
    for m in ("image", "video", "audio", "depth", "thermal", "imu"):
        row: dict[str, Any] = {"emergent": zero_shot(emb[m], y, cls)}
        if paired is not None and m in paired[0]:
            row["text_paired"] = zero_shot(paired[0][m], y, paired[1])
            row["gap"] = row["text_paired"]["top1"] - row["emergent"]["top1"]
        out[m] = row
    return out


def trained_together(a: str, b: str) -> bool:
    """Whether a pair of modalities met in a training batch (image-text, or image-X in the binding run)."""
    pair = {a, b}
    return pair in ({"image", "text"}, *({"image", m} for m in BOUND)) or pair == {"image", "video"}


def retrieval_matrix(emb: dict[str, torch.Tensor], y: np.ndarray, ks=(1, 5)) -> dict[str, dict]:
    """R@k (%) for every ordered pair of modalities (query -> gallery), relevant = same digit."""
    same = y[:, None] == y[None, :]  # (N, N)
    out = {}
    for q in emb:
        for g in emb:
            if q != g:
                r = retrieval(emb[q], emb[g], same, ks)
                out[f"{q}->{g}"] = {**r, "trained_together": trained_together(q, g)}
    return out


def few_shot_table(train_emb: dict[str, torch.Tensor], y_train: np.ndarray, test_emb: dict[str, torch.Tensor],
                   y_test: np.ndarray, shots, seeds) -> dict[str, dict]:  # fmt: skip
    """Linear-probe top-1 (%) per modality at each shot count (paper settings, audio's where it gives none)."""
    return {m: few_shot(train_emb[m], y_train, test_emb[m], y_test, shots, seeds, settings_for(m))
            for m in train_emb}  # fmt: skip


def video_clip_table(model: ImageBind, files: list, cls: torch.Tensor, y: np.ndarray, seconds: float,
                     ) -> dict[str, Any]:  # fmt: skip
    """Zero-shot top-1 (%) of each 2-frame clip of the videos alone (clips tiling the whole video, first to last),
    of their average (the official loader's even spread) and of the demo's choice (the model's `preprocess`)."""
    opts = dict(model.config.encoders["vision"].preprocess)
    n = max(1, round(seconds / opts["clip_duration"]))
    x = load("video", files, config=model.config, clips=n, last_seconds=None)  # (N, n, 3, 2, S, S)
    per = [embed(model, "video", x[:, i : i + 1]) for i in range(n)]
    top1 = lambda e: zero_shot(e, y, cls)["top1"]  # noqa: E731
    tail = opts.get("clips", n) if opts.get("last_seconds") else n
    return {"clips": [top1(e) for e in per], "all_clips": top1(embed(model, "video", x)), "tail_clips": tail,
            "clip_seconds": opts["clip_duration"]}  # fmt: skip
