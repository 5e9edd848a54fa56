"""Symmetric InfoNCE against a NumPy re-derivation, and the local-loss form's single-process equivalence."""

import numpy as np
import torch
import torch.nn.functional as F

from bindkit.train.loss import clip_loss, gather, local_clip_loss


def _numpy_infonce(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    logits = scale * a @ b.T

    def ce(z):  # mean over rows of -log softmax(z)[i, i]
        z = z - z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - np.diag(z)))

    return (ce(logits) + ce(logits.T)) / 2


def test_clip_loss_matches_numpy_and_hand_value():
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=-1)
    b = F.normalize(torch.randn(7, 5, generator=g, dtype=torch.float64), dim=-1)
    for scale in (1.0, 5.0, 20.0):
        assert abs(float(clip_loss(a, b, scale)) - _numpy_infonce(a.numpy(), b.numpy(), scale)) < 1e-12
    # Two orthogonal pairs at scale s: each row's loss is log(1 + e^-s).
    e = torch.eye(2, dtype=torch.float64)
    assert abs(float(clip_loss(e, e, 3.0)) - np.log1p(np.exp(-3.0))) < 1e-12


def test_local_loss_equals_clip_loss_and_accuracy_counts_matches():
    g = torch.Generator().manual_seed(1)
    a = F.normalize(torch.randn(8, 4, generator=g), dim=-1).requires_grad_()
    b = F.normalize(torch.randn(8, 4, generator=g), dim=-1)
    scale = torch.tensor(10.0, requires_grad=True)
    loss, acc = local_clip_loss(a, b, scale)
    ref = clip_loss(a, b, scale)
    assert torch.allclose(loss, ref, atol=1e-6)
    ga, gs = torch.autograd.grad(loss, (a, scale))
    ra, rs = torch.autograd.grad(ref, (a, scale))
    assert torch.allclose(ga, ra, atol=1e-6) and torch.allclose(gs, rs, atol=1e-6)
    logits = (a @ b.T).detach()
    want = (logits.argmax(1) == torch.arange(8)).float().mean() + (
        logits.argmax(0) == torch.arange(8)
    ).float().mean()
    assert float(acc) == float(want) / 2
    # Identical pairs are all retrieved.
    assert float(local_clip_loss(b, b, 10.0)[1]) == 1.0
    assert gather(b) is b  # no process group: identity
