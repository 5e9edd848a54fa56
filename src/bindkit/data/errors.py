"""Batch error handling shared by every loader.

A batch either loads completely, or fails with one `LoadError` that names every bad item and why. With
`errors="skip"` the loader returns a `LoadResult(tensor, skipped)`: the good items stacked in input order, plus one
`Skipped(index, item, reason)` per item left out, so nothing disappears silently.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

ERROR_MODES = ("raise", "skip")


class ItemError(ValueError):
    """Raised by a single-item loader when its input is unusable; the message is the reason."""


class Skipped(NamedTuple):
    """One item left out of a batch: its position in the input, a short description of it, and why."""

    index: int  # type: ignore[assignment]  # shadows tuple.index, as the public field name always has
    item: str
    reason: str


class LoadResult(NamedTuple):
    """What a loader returns with `errors="skip"`: the stacked good items and the items left out."""

    tensor: torch.Tensor  # good items only, in input order; row i is the i-th index not in `skipped`
    skipped: list[Skipped]

    def kept(self, n: int) -> list[int]:
        """Input positions of the rows of `tensor`, for a batch of `n` items."""
        bad = {s.index for s in self.skipped}
        return [i for i in range(n) if i not in bad]


class LoadError(ValueError):
    """One or more items of a batch could not be loaded; `.failures` lists every one of them.

    `LoadError(kind, total, failures)` builds the message; `LoadError(message)` alone is accepted too, which is
    how a DataLoader worker's exception is re-raised in the main process (the message survives, `.failures` not).
    """

    def __init__(self, kind: str, total: int | None = None, failures: list[Skipped] | None = None):
        self.kind, self.total, self.failures = kind, total, list(failures or [])
        if total is None:
            super().__init__(kind)
            return
        head = f"{len(self.failures)} of {total} {kind} item(s) could not be loaded:"
        super().__init__("\n".join([head, *(f"  [{f.index}] {f.item}: {f.reason}" for f in self.failures)]))


def describe(item: Any) -> str:
    """A short, printable name for an input item (its path, or its type and size)."""
    if isinstance(item, (str, Path)):
        return repr(str(item))
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"<{type(item).__name__}, {len(item)} B>"
    if isinstance(item, np.ndarray):
        return f"<ndarray {tuple(item.shape)} {item.dtype}>"
    if isinstance(item, torch.Tensor):
        return f"<tensor {tuple(item.shape)} {item.dtype}>"
    if hasattr(item, "size") and hasattr(item, "mode"):  # PIL image
        return f"<PIL {item.mode} {item.size[0]}x{item.size[1]}>"
    name = getattr(item, "name", None)  # open file objects
    return repr(name) if isinstance(name, str) else reprlib.repr(item)


def check_errors(errors: str) -> None:
    """Validate the `errors` argument before any work."""
    if errors not in ERROR_MODES:
        raise ValueError(f"errors must be one of {ERROR_MODES}, got {errors!r}")


def check_items(items: Any, kind: str) -> None:
    """A batch must be a list-like of items; a lone path or bytes object is a common slip."""
    if isinstance(items, (str, Path, bytes)) or not isinstance(items, Sequence):
        hint = "list(batch) for a stacked batch" if hasattr(items, "shape") else "[item] for a single item"
        raise TypeError(f"expected a list of {kind} items, got {type(items).__name__}; pass {hint}")


def _reason(e: Exception) -> str:
    if isinstance(e, ItemError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def load_batch(
    items: Sequence[Any],
    load_one: Callable[[int, Any], torch.Tensor],
    kind: str,
    item_shape: tuple[int, ...],
    errors: str = "raise",
    num_workers: int = 0,
) -> torch.Tensor | LoadResult:
    """Run `load_one(index, item)` over a batch, collect every failure, then stack or raise."""
    check_errors(errors)
    check_items(items, kind)

    def run(i: int) -> torch.Tensor | Skipped:
        try:
            return load_one(i, items[i])
        except Exception as e:  # every failure is reported, with its item, below
            return Skipped(i, describe(items[i]), _reason(e))

    if num_workers > 0 and len(items) > 1:  # decoders release the GIL, so threads overlap the I/O and decode
        with ThreadPoolExecutor(num_workers) as pool:
            results = list(pool.map(run, range(len(items))))
    else:
        results = [run(i) for i in range(len(items))]
    bad = [r for r in results if isinstance(r, Skipped)]
    if bad and errors == "raise":
        raise LoadError(kind, len(items), bad)
    good = [r for r in results if not isinstance(r, Skipped)]
    tensor = torch.stack(good) if good else torch.empty((0, *item_shape))
    return LoadResult(tensor, bad) if errors == "skip" else tensor
