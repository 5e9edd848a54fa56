"""Rank/world queries and small collectives over the process group an entry point opened (`bindkit.process`)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup(device: str) -> torch.device:
    """This rank's device ("auto": its GPU, else the CPU); the process group, if any, is the entry point's."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("launched by torchrun but no process group is open: run `bindkit train`, or open "
                           "`bindkit.process.distributed()` around the call")  # fmt: skip
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and world() > 1:
        device = f"cuda:{local}"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def active() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if active() else 0


def world() -> int:
    """Number of ranks (1 when not distributed)."""
    return dist.get_world_size() if active() else 1


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if active():
        dist.barrier()


def mean(values: list[float], device: torch.device) -> list[float]:
    """Element-wise mean of small float lists over ranks."""
    if not active():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world()).tolist()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True if `flag` is set on any rank (so every rank stops at the same step)."""
    if not active():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t)
    return bool(t.item())
