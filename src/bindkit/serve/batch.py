"""`Batcher`: concurrent requests share forward passes. One worker thread owns the model; each request puts its
loaded input (one item) on a bounded queue and waits for its row of the output.

The worker takes a job, then every job already waiting (up to `max_batch`), and runs one `model.encode` per
encoder and input shape over them. While a pass runs, new requests queue up, so under load batches grow by
themselves and an idle service answers one request at once. A full queue refuses new work (`Busy`, answered
503 with `Retry-After`); a request that waits longer than `timeout_s` gives up (`Busy` too) and its job is
dropped unrun if the worker has not reached it yet.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import numpy as np
import torch


class Busy(RuntimeError):
    """The service cannot take or finish a request now (queue full or timed out); retry later."""


@dataclass
class _Job:
    encoder: str
    x: torch.Tensor  # (1, ...) one loaded item
    future: Future = field(default_factory=Future)

    @property
    def key(self) -> tuple:
        return (self.encoder, tuple(self.x.shape[1:]), self.x.dtype)


class Batcher:
    """Runs `model.encode` for queued single items, batched per encoder (see the module docstring)."""

    def __init__(self, model: Any, max_batch: int = 64, max_queue: int = 256, timeout_s: float = 30.0):
        self.model, self.max_batch, self.timeout_s = model, max_batch, timeout_s
        self.queue: queue.Queue[_Job | None] = queue.Queue(max_queue)
        self.passes = 0  # forward passes run, for tests and benchmarks
        self.thread = threading.Thread(target=self._work, name="bindkit-batcher", daemon=True)
        self.thread.start()

    def encode(self, encoder: str, x: torch.Tensor) -> np.ndarray:
        """The embedding (out_dim,) of one item `x` (1, ...) for `encoder`, computed in a shared batch."""
        job = _Job(encoder, x)
        try:
            self.queue.put_nowait(job)
        except queue.Full as e:
            raise Busy(f"the service is busy ({self.queue.maxsize} requests waiting); retry shortly") from e
        try:
            return job.future.result(timeout=self.timeout_s)
        except FutureTimeout as e:
            job.future.cancel()  # not run if the worker has not taken it yet
            raise Busy(f"no answer within {self.timeout_s:.0f} s; the service is overloaded") from e

    def close(self) -> None:
        """Stop the worker after the jobs already queued."""
        self.queue.put(None)
        self.thread.join(10)

    def _take(self) -> list[_Job] | None:
        """The next job and all that wait behind it (at most `max_batch`); None to stop."""
        first = self.queue.get()
        if first is None:
            return None
        jobs = [first]
        while len(jobs) < self.max_batch:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self.queue.put(None)  # stop after this batch
                break
            jobs.append(job)
        return [j for j in jobs if j.future.set_running_or_notify_cancel()]  # drop timed-out ones

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            for _, group in groupby(sorted(jobs, key=lambda j: str(j.key)), key=lambda j: str(j.key)):
                self._run(list(group))

    def _run(self, jobs: list[_Job]) -> None:
        name = jobs[0].encoder
        try:
            device = next(self.model.parameters()).device
            x = torch.cat([j.x for j in jobs]).to(device)  # (B, ...)
            with torch.inference_mode():
                out = self.model.encode({name: x})[name].float().cpu().numpy()  # (B, D)
            self.passes += 1
        except Exception as e:  # noqa: BLE001 - every waiting request gets the failure, none hangs
            for j in jobs:
                j.future.set_exception(e)
            return
        for j, row in zip(jobs, out, strict=True):
            j.future.set_result(row)
