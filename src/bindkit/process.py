"""Process-wide state, owned by entry points (the `bindkit` command, scripts): the torchrun process group and stop
signals. Library functions never start a process group nor install a signal handler; they take what these give.

    with distributed() as ranks, stop_on(signal.SIGTERM) as stop:
        train(cfg, stop=stop)                       # rank and world size come from the group opened here
        embed_paths(..., rank=ranks.rank, world=ranks.world)
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in a run: its rank, the number of ranks and its rank on this machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    def device(self) -> str | None:
        """This rank's GPU when several ranks share a machine with GPUs (torchrun numbers them), else None."""
        if self.world > 1 and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return None


def launched_ranks() -> int:
    """The number of ranks torchrun launched (its WORLD_SIZE), 1 when not launched by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def backend_for(device: str | None) -> str:
    """nccl for runs on CUDA devices (or "auto" where CUDA is present), gloo otherwise."""
    cuda = (device or "").startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if cuda else "gloo"


@contextmanager
def distributed(backend: str = "gloo", timeout_min: float = 30.0) -> Iterator[Ranks]:
    """Join the process group torchrun describes (none when not launched by it) and leave it on exit.

    A group that is already initialised (e.g. by a test's spawn) is used as it is and left open."""
    started = False
    if launched_ranks() > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_min))
        started = True
    try:
        if dist.is_available() and dist.is_initialized():
            yield Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
        else:
            yield Ranks()
    finally:
        if started:
            dist.destroy_process_group()


@contextmanager
def stop_on(*signums: int) -> Iterator[threading.Event]:
    """An event set when one of `signums` arrives (default SIGTERM); previous handlers come back on exit.

    Pass it to a long job (`train(..., stop=event)`), which then finishes its step, checkpoints and returns. Off the
    main thread (where Python cannot install handlers) the event is never set by a signal."""
    event = threading.Event()
    signums = signums or (signal.SIGTERM,)
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = {s: signal.signal(s, lambda *_: event.set()) for s in signums}
    try:
        yield event
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
