"""Few-shot linear probes on frozen embeddings (paper App. B.2).

k labelled items per class are drawn from the training pool with a seed, a linear classifier is trained with AdamW
on their embeddings, and top-1 is measured on the test set; this repeats over seeds and reports mean and spread.
Paper settings: audio (ESC fold 1) lr 1.6e-3, weight decay 0.05, 50 epochs; depth (SUN-D) lr 1e-2, no weight decay,
60 epochs; other modalities use the audio settings. The paper gives no batch size: we use 32 (full batch when fewer).
"""

from __future__ import annotations

import math
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


@dataclass
class LinearProbes:
    """S linear classifiers trained side by side: weight (S, D, C), bias (S, C)."""

    weight: torch.Tensor
    bias: torch.Tensor

    def scores(self, x) -> torch.Tensor:
        """Logits (S, N, C) of every probe on features (N, D)."""
        x = torch.as_tensor(as_numpy(x), dtype=self.weight.dtype)
        return x @ self.weight + self.bias[:, None]


def train_probes(x, y, num_classes: int, settings: ProbeSettings, seeds: Sequence[int]) -> LinearProbes:
    """Zero-initialised linear probes, one per seed, trained with AdamW (torch's update rule, weight decay on all
    parameters) and softmax cross-entropy on fixed features x (S, n, D), labels y (S, n); seed s shuffles batches.

    Gradients are written out and the probes of all seeds step together (batched matmuls): thousands of tiny steps
    would otherwise be dominated by autograd and optimizer overhead."""
    x = torch.as_tensor(as_numpy(x))
    x = x if x.dtype in (torch.float32, torch.float64) else x.float()
    y = torch.as_tensor(as_numpy(y), dtype=torch.long)
    S, n, D = x.shape
    params = [x.new_zeros(S, D, num_classes), x.new_zeros(S, num_classes)]
    m1, m2 = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    b1, b2, eps, lr, wd = 0.9, 0.999, 1e-8, settings.lr, settings.weight_decay
    gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
    bs, rows, step = min(settings.batch_size, n), torch.arange(S)[:, None], 0
    for _ in range(settings.epochs):
        perm = torch.stack([torch.randperm(n, generator=g) for g in gens])  # (S, n)
        for idx in perm.split(bs, dim=1):  # (S, b)
            xb, yb = x[rows, idx], y[rows, idx]  # (S, b, D), (S, b)
            p = torch.softmax(torch.baddbmm(params[1][:, None], xb, params[0]), -1)  # (S, b, C)
            p[rows, torch.arange(idx.shape[1]), yb] -= 1.0  # b * d(mean CE)/d(logits)
            grads = [torch.bmm(xb.transpose(1, 2), p) / idx.shape[1], p.mean(1)]
            step += 1
            for par, g, u, v in zip(params, grads, m1, m2, strict=True):
                par.mul_(1 - lr * wd)  # decoupled weight decay, applied first as torch.optim.AdamW does
                u.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v.sqrt() / math.sqrt(1 - b2**step)).add_(eps)
                par.addcdiv_(u, denom, value=-lr / (1 - b1**step))
    return LinearProbes(*params)


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
    xtr, xte = as_numpy(train_emb).astype(np.float32), as_numpy(test_emb).astype(np.float32)
    if normalize:  # unit rows, as cosine search sees them
        xtr = xtr / np.linalg.norm(xtr, axis=-1, keepdims=True)
        xte = xte / np.linalg.norm(xte, axis=-1, keepdims=True)
    ytr, yte = as_numpy(train_y).astype(np.int64), as_numpy(test_y).astype(np.int64)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError(
            f"train {len(xtr)}/{len(ytr)} or test {len(xte)}/{len(yte)} embeddings/labels differ"
        )
    c = int(max(ytr.max(), yte.max())) + 1
    out: dict[str, dict] = {}
    for k in shots:
        idx = np.stack([sample_shots(ytr, k, seed) for seed in seeds])  # (S, k * classes)
        probes = train_probes(xtr[idx], ytr[idx], c, settings, seeds)
        runs = [topk_accuracy(s, yte, (1,))[1] for s in probes.scores(xte).double().numpy()]
        out[f"k={k}"] = {"mean": float(np.mean(runs)), "std": float(np.std(runs)), "runs": runs}
    out["settings"] = asdict(settings) | {"seeds": list(seeds), "normalize": normalize}
    return out
