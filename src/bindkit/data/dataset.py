"""Raw files -> model inputs at scale: a loader per modality, config-derived options, and DataLoader datasets.

`load(modality, items, config=...)` runs the right loader with the sizes of a model config. `ModalityDataset`
(map-style) and `StreamingDataset` (iterable, walks folders lazily, shards across DataLoader workers) load one item
at a time in the workers, so memory stays bounded by the DataLoader's prefetch, whatever the collection's size.
Items yield `Sample(key, input, error)`; with `errors="skip"` a bad item arrives as a sample with an error, and
`collate` moves it to `Batch.skipped`, so nothing is dropped silently.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

import bindkit.modalities as modalities
from bindkit.config import EncoderConfig, ImageBindConfig, canonical
from bindkit.data.errors import LoadError, check_errors


def get_loader(modality: str) -> Callable[..., Any]:
    """The batch loader of a kind, alias or encoder name (`image`/`vision`, `video`, `text`, `audio`, ...)."""
    return modalities.spec(modality).call("loader")


def loader_kwargs(modality: str, enc: EncoderConfig) -> dict[str, Any]:
    """Loader options that make inputs fit an encoder: its input size, plus its `preprocess` constants.

    The one place these are derived: `load`, the streaming dataset, the store and the trainer all call it, so a model
    sees the same inputs in training, evaluation and search."""
    spec = modalities.spec(modality)
    accepted = inspect.signature(spec.call("loader")).parameters
    return {**spec.sizes(enc), **{k: v for k, v in enc.preprocess.items() if k in accepted}}


def load(modality: str, items: Sequence[Any], config: ImageBindConfig | None = None, **kwargs: Any) -> Any:
    """Run `modality`'s loader on `items`; `config` supplies sizes and fitted constants, `kwargs` override them."""
    if config is not None:
        enc = config.encoders[canonical(modality)]
        kwargs = {**loader_kwargs(modality, enc), **kwargs}
    return get_loader(modality)(items, **kwargs)


def iter_files(folder: str | Path, modality: str) -> Iterator[Path]:
    """Files of a modality under `folder`, recursively, in sorted order, listed one directory at a time."""
    exts = set(modalities.spec(modality).extensions)
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{folder} is not a directory")
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()  # walk order is then deterministic
        for name in sorted(filenames):
            if Path(name).suffix.lower() in exts:
                yield Path(dirpath) / name


def list_files(folder: str | Path, modality: str) -> list[Path]:
    """All files of a modality under `folder` (see `iter_files`)."""
    return list(iter_files(folder, modality))


class Sample(NamedTuple):
    """One loaded item: `key` (its path, or its position for in-memory items), the input or the error."""

    key: str
    input: torch.Tensor | None
    error: str | None


class Batch(NamedTuple):
    """A collated batch: keys and stacked inputs of the good samples, and `(key, reason)` of the bad ones."""

    keys: list[str]
    inputs: torch.Tensor
    skipped: list[tuple[str, str]]


def collate(samples: list[Sample]) -> Batch:
    """`DataLoader` collate function for `Sample`s (pass `collate_fn=collate`)."""
    good = [s for s in samples if s.error is None]
    tensors = [s.input for s in good if s.input is not None]
    assert len(tensors) == len(good)  # a sample without an error holds its input
    inputs = torch.stack(tensors) if good else torch.empty(0)
    return Batch([s.key for s in good], inputs, [(s.key, s.error) for s in samples if s.error is not None])


class _Loading:
    """What both datasets share: load one item with the modality's loader, as a `Sample`."""

    def __init__(self, modality: str, errors: str, config: ImageBindConfig | None, kwargs: dict[str, Any]):
        check_errors(errors)
        get_loader(modality)  # fail on an unknown modality now, not in a worker
        self.modality, self.errors, self.config, self.kwargs = modality, errors, config, kwargs

    def load_sample(self, position: int, item: Any) -> Sample:
        """Load one item as a `Sample`; a bad one raises (errors="raise") or comes back with its reason."""
        by_path = isinstance(item, (str, Path)) and not modalities.spec(self.modality).text_items
        key = str(item) if by_path else str(position)
        try:
            x = load(self.modality, [item], self.config, **self.kwargs)
        except LoadError as e:
            if self.errors == "raise":  # name the item by its position in the dataset, not in a batch of one
                failure = e.failures[0]._replace(index=position)
                raise LoadError(self.modality, 1, [failure]) from None
            return Sample(key, None, e.failures[0].reason)
        return Sample(key, x[0], None)


class ModalityDataset(_Loading, Dataset):
    """Map-style dataset over a list of items (paths, bytes, arrays, strings); `ds[i]` is a `Sample`."""

    def __init__(self, items: Sequence[Any], modality: str, errors: str = "raise",
                 config: ImageBindConfig | None = None, **kwargs: Any):  # fmt: skip
        super().__init__(modality, errors, config, kwargs)
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Sample:
        return self.load_sample(i, self.items[i])


class StreamingDataset(_Loading, IterableDataset):
    """Iterable dataset: streams a folder (walked lazily), a sequence, or a zero-argument callable's iterable.

    With several DataLoader workers, worker w takes items w, w + W, w + 2W, ... of the same ordered stream, so each
    item is loaded exactly once. A callable or folder is re-read in every worker and every epoch.
    """

    def __init__(self, source: str | Path | Sequence[Any] | Callable[[], Iterable[Any]], modality: str,
                 errors: str = "raise", config: ImageBindConfig | None = None, **kwargs: Any):  # fmt: skip
        super().__init__(modality, errors, config, kwargs)
        if isinstance(source, (str, Path)) and not Path(source).is_dir():
            raise NotADirectoryError(f"{source} is not a directory")
        self.source = source

    def _items(self) -> Iterable[Any]:
        if isinstance(self.source, (str, Path)):
            return iter_files(self.source, self.modality)
        return self.source() if callable(self.source) else self.source

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for n, item in enumerate(self._items()):
            if n % nw == wid:
                yield self.load_sample(n, item)
