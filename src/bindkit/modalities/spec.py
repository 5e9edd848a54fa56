"""What a modality is, declared once: `ModalitySpec`, the `Stem` protocol, and the registry every layer reads.

A spec names a *kind* of item (`image`, `video`, `text`, ...) and the encoder that embeds it (`image` and `video`
share `vision`). The model reads only `stem`; the data, store, train, evaluate and serve code read the other fields.
Functions of those upper layers are given as `"module:attr"` strings (`Ref`), imported on first use, so this table
imports nothing above the model. A new modality is one file that builds a spec and calls `register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from bindkit.config import EncoderConfig

Ref = str | Callable[..., Any]  # a callable, or "module:attr" naming one (imported when first used)


class Stem(Protocol):
    """An encoder's input stage (an `nn.Module`): checks a batch, knows its token grid, makes tokens."""

    def validate(self, x: torch.Tensor) -> None:
        """Raise a clear error naming the modality when `x` is not a batch this stem takes."""

    @property
    def grid(self) -> tuple[int, ...]:
        """The token grid for the configured input (without any CLS token)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (N, ...) -> tokens (N, L, D)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


StemFactory = Callable[[EncoderConfig], Stem]


@dataclass(frozen=True)
class ModalitySpec:
    """One kind of item: its encoder and stem, file names, detection hints, loader, fitter, augmentation, preview."""

    name: str  # the kind, as the store records it
    encoder: str  # the encoder that embeds it
    loader: Ref  # batch loader: (items, **options) -> tensor, or LoadResult with errors="skip"
    sizes: Callable[[EncoderConfig], dict[str, Any]]  # loader options that fit an encoder's input shape
    stem: StemFactory | None = None  # on one spec per encoder
    aliases: tuple[str, ...] = ()  # other names users may give this kind
    extensions: tuple[str, ...] = ()  # files a folder of this kind lists
    detect: tuple[str, ...] | None = None  # extensions detection considers this kind for (None: `extensions`)
    hints: tuple[str, ...] = ()  # words in a file's name or folders that pick this kind
    sniff: Ref | None = None  # (path) -> bool: the content is this kind (tried in table order); may raise
    per_item: tuple[str, ...] = ()  # loader options a manifest row may set per item
    text_items: bool = False  # items are strings (or .txt files read as UTF-8), not files for the loader
    fitter: Ref | None = None  # (batches) -> preprocess dict: normalisation fitted to training data
    view: Ref | None = None  # (x, params) -> x: the seeded view augmentation of a batch
    step_aug: Ref | None = None  # (x, pair config, seeds) -> x: per-step augmentation of a trained side
    thumbnail: Ref | None = None  # (path, model config) -> PNG bytes

    def call(self, field: str) -> Callable[..., Any]:
        """The function a field names (raises when the field is unset)."""
        ref = getattr(self, field)
        if ref is None:
            raise ValueError(f"{self.name}: no {field}")
        return resolve(ref)

    @property
    def detect_extensions(self) -> tuple[str, ...]:
        """Extensions detection considers this kind for."""
        return self.extensions if self.detect is None else self.detect


def resolve(ref: Ref) -> Callable[..., Any]:
    """A `Ref` as a callable ("module:attr" imported now)."""
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


_SPECS: dict[str, ModalitySpec] = {}  # kind -> spec, in registration order
STEMS: dict[str, StemFactory] = {}  # encoder -> stem


def register(spec: ModalitySpec) -> ModalitySpec:
    """Add a kind to the table (its stem, if given, becomes its encoder's stem)."""
    taken = {n for s in _SPECS.values() for n in (s.name, *s.aliases)}
    clash = {spec.name, *spec.aliases} & taken
    if clash:
        raise ValueError(f"modality names {sorted(clash)} are already registered")
    _SPECS[spec.name] = spec
    if spec.stem is not None:
        STEMS[spec.encoder] = spec.stem
    return spec


def unregister(name: str) -> None:
    """Remove a kind (and its stem) from the table."""
    spec = _SPECS.pop(name)
    if spec.stem is not None and STEMS.get(spec.encoder) is spec.stem:
        del STEMS[spec.encoder]


def specs() -> list[ModalitySpec]:
    """Every registered kind, in registration order."""
    return list(_SPECS.values())


def kinds() -> tuple[str, ...]:
    """Every registered kind's name."""
    return tuple(_SPECS)


def spec(name: str) -> ModalitySpec:
    """The spec of a kind, given its name, an alias, or its encoder's name (`vision` -> image)."""
    if name in _SPECS:
        return _SPECS[name]
    for s in _SPECS.values():
        if name in s.aliases:
            return s
    for s in _SPECS.values():
        if name == s.encoder:
            return s
    raise ValueError(f"unknown modality {name!r}; choose from {', '.join(_SPECS)}")


def encoder_of(name: str) -> str:
    """The encoder of a kind, alias or encoder name; unknown names map to themselves."""
    try:
        return spec(name).encoder
    except ValueError:
        return name
