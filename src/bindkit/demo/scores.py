"""Scoring the demo on its held-out test split with `bindkit.evaluate`'s protocols.

Emergent zero-shot (every modality against the text prompts of the image-text anchor), the text-paired comparison
row, cross-modal retrieval (relevant = same digit) for every ordered pair of modalities, few-shot linear probes and
an embedding-arithmetic query (the surface seen in an image + the digit spoken in a clip).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bindkit.data import tokenize
from bindkit.evaluate import class_embeddings as evaluate_class_embeddings
from bindkit.evaluate import (
    compose,
    few_shot,
    nearest,
    retrieval,
    settings_for,
    share_with_attributes,
    zero_shot,
)
from bindkit.model import ImageBind
from bindkit.worlds.captions import PROMPT_TEMPLATES, WORDS

from .settings import BOUND


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


def zero_shot_table(emb: dict[str, torch.Tensor], paired: dict[str, torch.Tensor], cls: torch.Tensor,
                    cls_paired: torch.Tensor, y: np.ndarray) -> dict[str, dict]:  # fmt: skip
    """Per modality: emergent top-1/top-5 (and text-paired top-1 for the bound modalities), in %."""
    out = {}
    for m in ("image", "video", "audio", "depth", "thermal", "imu"):
        row: dict[str, Any] = {"emergent": zero_shot(emb[m], y, cls)}
        if m in paired:
            row["text_paired"] = zero_shot(paired[m], y, cls_paired)
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


def arithmetic_query(image: torch.Tensor, audio: torch.Tensor, surface: list[str], digit: np.ndarray,
                     n_queries: int, seed: int = 0, k: int = 5) -> dict[str, float]:  # fmt: skip
    """unit(image_i) + unit(audio_j) against the test images: share (%) of the top k showing image i's surface AND
    audio j's digit (j drawn with another digit than i's); image i itself is left out of its results. Baselines:
    the image alone and the audio alone; `ceiling`: the best share the gallery allows (some pairs have < k items)."""
    rng = np.random.default_rng(seed)
    n = len(digit)
    qi = rng.choice(n, size=min(n_queries, n), replace=False)
    qj = np.array([rng.choice(np.nonzero(digit != digit[i])[0]) for i in qi])
    surf = np.asarray(surface)
    want = [surf[qi], digit[qj]]
    out = {}
    for name, q in (
        ("image+audio", compose([image[qi], audio[qj]])),
        ("image", image[qi]),
        ("audio", audio[qj]),
    ):
        _, ranked = nearest(q, image, k + 1)
        idx = np.stack(
            [row[row != i][:k] for row, i in zip(ranked.numpy(), qi, strict=True)]
        )  # drop the query image
        out[name] = share_with_attributes(idx, [surf, digit], want)
    both = (surf[None, :] == want[0][:, None]) & (digit[None, :] == want[1][:, None])
    out["ceiling"] = float(np.minimum(both.sum(1), k).mean() / k * 100)
    out["n_queries"], out["k"] = len(qi), k
    return out
