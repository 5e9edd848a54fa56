"""Symmetric InfoNCE, single-process and distributed (local loss + gather with gradients).

With N pairs of unit embeddings (a_i, b_i) and a logit scale s = 1/tau, logits = s * a @ b.T and the loss is the
mean of the row-wise and column-wise cross entropies against the diagonal. Distributed, each rank holds n rows; it
gathers every rank's embeddings (gradients flow back through the gather) and scores only its own rows against all
N columns, in both directions. Each rank's loss is the mean over its rows, so averaging the ranks' gradients (as
DDP does) gives exactly the gradient of the single-process loss on the joined batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


class _GatherWithGrad(torch.autograd.Function):
    """all_gather along dim 0 whose backward sums the incoming gradients over ranks and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # (n, D) -> (world * n, D)
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # Every rank's loss depends on this rank's rows (as columns), so their gradients add up here.
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' rows in rank order (world * n, D); differentiable when `x` requires grad; identity when not
    distributed. Same semantics as `torch.distributed.nn.functional.all_gather` + cat (deprecated in torch 2.13)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    if x.requires_grad:
        return _GatherWithGrad.apply(x)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE of matched rows of unit embeddings `a`, `b` (N, D) at `logit_scale` (= 1/temperature)."""
    logits = logit_scale * a @ b.T  # (N, N)
    labels = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def local_clip_loss(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows (n, D) against all ranks' columns: (loss, in-batch top-1 accuracy of both directions).

    With one process it equals `clip_loss`. The accuracy is the share of this rank's rows whose best match is its
    own pair (mean of a->b and b->a), a detached scalar.
    """
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    all_a, all_b = gather(a), gather(b)  # (N, D)
    logits_ab = logit_scale * a @ all_b.T  # (n, N)
    logits_ba = logit_scale * b @ all_a.T
    labels = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    loss = (F.cross_entropy(logits_ab, labels) + F.cross_entropy(logits_ba, labels)) / 2
    with torch.no_grad():
        acc = (
            (logits_ab.argmax(1) == labels).float().mean() + (logits_ba.argmax(1) == labels).float().mean()
        ) / 2
    return loss, acc
