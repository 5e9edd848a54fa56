"""Few-shot linear probes on frozen embeddings (paper App. B.2).

k labelled items per class are drawn from the training pool with a seed, a linear classifier is trained with AdamW
on their embeddings, and top-1 is measured on the test set; this repeats over seeds and reports mean and spread.
Paper settings: audio (ESC fold 1) lr 1.6e-3, weight decay 0.05, 50 epochs; depth (SUN-D) lr 1e-2, no weight decay,
60 epochs; other modalities use the audio settings. The paper gives no batch size: we use 32 (full batch when fewer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from bindkit.evaluate.metrics import as_numpy, topk_accuracy


@dataclass(frozen=True)
class ProbeSettings:
    """Optimiser settings of one linear probe."""

    lr: float = 1.6e-3
    weight_decay: float = 0.05
    epochs: int = 50
    batch_size: int = 32


PAPER_SETTINGS = {
    "audio": ProbeSettings(lr=1.6e-3, weight_decay=0.05, epochs=50),
    "depth": ProbeSettings(lr=1e-2, weight_decay=0.0, epochs=60),
}


def settings_for(modality: str) -> ProbeSettings:
    """The paper's probe settings for a modality (the audio ones where the paper gives none)."""
    return PAPER_SETTINGS.get(modality, PAPER_SETTINGS["audio"])


def sample_shots(labels, k: int, seed: int) -> np.ndarray:
    """Indices of k items per class, drawn without replacement with `seed`; every class needs at least k items."""
    y = as_numpy(labels).astype(np.int64)
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(y):
        pool = np.nonzero(y == c)[0]
        if len(pool) < k:
            raise ValueError(f"class {c} has {len(pool)} training items, fewer than {k} shots")
        picks.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(picks))


def train_probe(x, y, num_classes: int, settings: ProbeSettings, seed: int = 0) -> torch.nn.Linear:
    """A linear classifier (zero-initialised) trained with AdamW and cross-entropy on fixed features."""
    x = torch.as_tensor(as_numpy(x), dtype=torch.float32)
    y = torch.as_tensor(as_numpy(y), dtype=torch.long)
    probe = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.zeros_(probe.weight)
    torch.nn.init.zeros_(probe.bias)
    opt = torch.optim.AdamW(probe.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    bs = min(settings.batch_size, len(x))
    for _ in range(settings.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(bs):
            loss = torch.nn.functional.cross_entropy(probe(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return probe.eval()


def few_shot(
    train_emb,
    train_y,
    test_emb,
    test_y,
    shots: Sequence[int] = (1, 2, 4, 8),
    seeds: Sequence[int] = (0, 1, 2),
    settings: ProbeSettings | None = None,
    normalize: bool = True,
) -> dict[str, dict]:
    """Top-1 (%) of linear probes at each shot count over seeds: {"k=1": {"mean", "std", "runs"}, ..., "settings"}."""
    settings = settings or PAPER_SETTINGS["audio"]
    xtr = torch.as_tensor(as_numpy(train_emb), dtype=torch.float32)
    xte = torch.as_tensor(as_numpy(test_emb), dtype=torch.float32)
    if (
        normalize
    ):  # unit rows, as cosine retrieval sees them; the logit scale is a per-modality constant anyway
        xtr, xte = torch.nn.functional.normalize(xtr, dim=-1), torch.nn.functional.normalize(xte, dim=-1)
    ytr, yte = as_numpy(train_y).astype(np.int64), as_numpy(test_y).astype(np.int64)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(
            f"train {len(xtr)}/{len(ytr)} or test {len(xte)}/{len(yte)} embeddings/labels differ"
        )
    c = int(max(ytr.max(), yte.max())) + 1
    out: dict[str, dict] = {}
    for k in shots:
        runs = []
        for seed in seeds:
            idx = sample_shots(ytr, k, seed)
            probe = train_probe(xtr[idx], ytr[idx], c, settings, seed)
            with torch.no_grad():
                runs.append(topk_accuracy(probe(xte).double().numpy(), yte, (1,))[1])
        out[f"k={k}"] = {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}
    out["settings"] = asdict(settings) | {"seeds": list(seeds), "normalize": normalize}
    return out
