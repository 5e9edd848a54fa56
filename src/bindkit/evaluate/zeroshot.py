"""Zero-shot classification from text prompts (CLIP recipe, as ImageBind uses it for every modality).

A class may have several names (NYU-D's "others" is 18 scene names, LLVIP's "person" is person/man/woman/people).
Each name gets its own embedding: the prompts "{template}.format(name)" are embedded, each L2-normalised, averaged
over templates and renormalised. A class scores the best cosine over its names (the paper's "others" rule).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from bindkit.evaluate.metrics import (
    as_numpy,
    label_ranks,
    mean_average_precision,
    mean_per_class_recall,
    multi_hot,
    topk_accuracy,
)

# Text encoder as the protocols see it: a list of strings -> (N, D) embeddings (any norm).
EncodeText = Callable[[list[str]], "torch.Tensor | np.ndarray"]


def default_templates() -> list[str]:
    """The 80 ImageNet prompt templates of CLIP (from open_clip's MIT-licensed metadata), with `{}` for the name."""
    text = resources.files("bindkit.assets").joinpath("templates/clip_80.txt").read_text(encoding="utf-8")
    return [t for t in text.splitlines() if t]


def load_templates(source: str | Path | Sequence[str] | None = None) -> list[str]:
    """Templates from None/"clip" (the default 80), a list, a .txt (one per line) or a .json list; each needs one `{}`."""
    if source is None or source == "clip":
        return default_templates()
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"template file {path} does not exist (or pass 'clip' for the 80 CLIP templates)"
            )
        raw = path.read_text(encoding="utf-8")
        source = json.loads(raw) if path.suffix == ".json" else [t for t in raw.splitlines() if t.strip()]
    templates = list(source)
    for i, t in enumerate(templates):
        if not isinstance(t, str) or t.count("{}") != 1:
            raise ValueError(
                f"template {i} ({t!r}) must be a string holding exactly one '{{}}' for the class name"
            )
    if not templates:
        raise ValueError("no templates given")
    return templates


def load_class_names(path: str | Path) -> list[list[str]]:
    """Class names from a .txt (one class a line; `a|b` gives synonyms) or .json (list, or {class: [names]})."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class-name file {path} does not exist")
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(raw)
        items = list(data.values()) if isinstance(data, dict) else data
        out = [[n] if isinstance(n, str) else list(n) for n in items]
    else:
        out = [[n.strip() for n in line.split("|")] for line in raw.splitlines() if line.strip()]
    for i, names in enumerate(out):
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"{path}: class {i} has an empty or non-string name: {names!r}")
    return out


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.double(), dim=-1)


def class_embeddings(
    encode_text: EncodeText,
    class_names: Sequence[str | Sequence[str]],
    templates: Sequence[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-name embeddings (M, D) (template mean of unit prompt embeddings, renormalised) and name->class index (M,)."""
    templates = load_templates(templates)
    groups = [[n] if isinstance(n, str) else list(n) for n in class_names]
    names = [n for g in groups for n in g]
    owner = torch.tensor([c for c, g in enumerate(groups) for _ in g], dtype=torch.long)
    prompts = [t.format(n) for n in names for t in templates]
    emb = _normalize(torch.as_tensor(as_numpy(encode_text(prompts))))  # (M*T, D)
    if emb.shape[0] != len(prompts):
        raise ValueError(f"encode_text returned {emb.shape[0]} rows for {len(prompts)} prompts")
    emb = emb.view(len(names), len(templates), -1).mean(1)  # (M, D)
    return _normalize(emb).float(), owner


def zero_shot_scores(emb, class_emb, groups=None) -> torch.Tensor:
    """Cosine scores (N, C): unit item embeddings against unit class embeddings, max over a class's names."""
    x = _normalize(torch.as_tensor(as_numpy(emb)))
    w = _normalize(torch.as_tensor(as_numpy(class_emb)))
    if x.shape[-1] != w.shape[-1]:
        raise ValueError(f"item embeddings have dim {x.shape[-1]} but class embeddings {w.shape[-1]}")
    s = x @ w.T  # (N, M)
    if groups is None:
        return s
    g = torch.as_tensor(as_numpy(groups)).long()
    if g.shape != (w.shape[0],):
        raise ValueError(
            f"groups must give one class per class-embedding row ({w.shape[0]}), got {tuple(g.shape)}"
        )
    out = torch.full((s.shape[0], int(g.max()) + 1), -torch.inf, dtype=s.dtype)
    return out.scatter_reduce(1, g.expand_as(s), s, reduce="amax")  # (N, C)


def zero_shot(
    emb, labels, class_emb, groups=None, ks: Sequence[int] = (1, 5), multilabel: bool = False
) -> dict[str, float]:
    """Zero-shot metrics (%): top-k and mean per-class recall, or mAP for multi-label `labels` (lists of classes)."""
    scores = zero_shot_scores(emb, class_emb, groups)
    n, c = scores.shape
    if len(labels) != n:
        raise ValueError(f"{n} embeddings but {len(labels)} labels")
    if multilabel:
        m, used = mean_average_precision(scores.numpy(), multi_hot(labels, c))
        return {"mAP": m, "classes_scored": used, "n": n}
    y = as_numpy(labels).astype(np.int64)
    acc = topk_accuracy(scores.numpy(), y, [k for k in ks if k <= c])
    out = {f"top{k}": v for k, v in acc.items()}
    right = label_ranks(scores.numpy(), y) == 0  # the same tie rule as top-1
    out["mean_per_class_recall"] = mean_per_class_recall(np.where(right, y, -1), y, c)
    out["n"] = n
    return out
