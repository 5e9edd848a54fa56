"""(kind, items, encoder config) -> a model-layout batch, through the `bindkit.data` loaders at the model's sizes.

The store embeds with whatever model it is given, so input sizes come from `EncoderConfig.input_shape`, never from
the loaders' defaults (the official 224 px / 128 mel / 204 frames / 2000 samples). `loader_call` maps a config to
those arguments (image/depth/thermal `size`, video `size` and `frames_per_clip`, text `context_length`, audio
`num_mel_bins` and `target_length`, IMU `length`) plus the encoder's fitted `preprocess` constants that the loader
accepts. Every loader is called with `errors="skip"` and returns `LoadResult(tensor, skipped)`, so a bad file is
reported with its reason instead of failing the batch. Text items (`ModalitySpec.text_items`) are read here from `.txt` files (UTF-8).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bindkit.modalities as modalities
from bindkit.config import EncoderConfig
from bindkit.store.detect import encoder_of


def per_item(kind: str) -> tuple[str, ...]:
    """Loader options a manifest row may set per item (e.g. an IMU .npy's rate in Hz)."""
    return modalities.spec(kind).per_item


def loader_call(kind: str, enc: EncoderConfig) -> tuple[Any, dict[str, Any]]:
    """The `bindkit.data` loader for `kind` and its keyword arguments for encoder `enc`."""
    from bindkit.data import get_loader, loader_kwargs

    if enc.modality != encoder_of(kind):
        raise ValueError(f"a {kind} item needs the {encoder_of(kind)} encoder, got {enc.modality}")
    return get_loader(kind), loader_kwargs(kind, enc)


def read_texts(items: Sequence[Any]) -> tuple[list[str], list[int], list[Any]]:
    """Text items -> (texts, their input positions, `Skipped` for unreadable or empty files). Strings stay."""
    from bindkit.data.errors import Skipped
    from bindkit.data.limits import read_file

    texts, keep, bad = [], [], []
    for i, item in enumerate(items):
        try:
            text = read_file(item).decode("utf-8").strip() if isinstance(item, Path) else item  # size-capped
        except (ValueError, UnicodeDecodeError) as e:  # ItemError (a ValueError): not a regular file, too big
            bad.append(Skipped(i, str(item), f"unreadable text file ({e})"))
            continue
        if isinstance(text, str) and not text.strip():
            bad.append(Skipped(i, str(item), "empty text"))
            continue
        if isinstance(text, str) and "\x00" in text:  # valid UTF-8, but a binary file: never embed it as text
            bad.append(Skipped(i, str(item), "binary data (NUL bytes), not text"))
            continue
        texts.append(text)
        keep.append(i)
    return texts, keep, bad


def load_inputs(
    kind: str, items: Sequence[Any], enc: EncoderConfig, options: dict[str, list] | None = None
) -> Any:
    """Load a batch of one kind for encoder `enc`; returns a `LoadResult` (bad items skipped, with reasons).

    `options` holds per-item loader arguments (one value per item) for the names in `per_item(kind)`.
    """
    from bindkit.data.errors import LoadResult, Skipped

    fn, kwargs = loader_call(kind, enc)
    kwargs.update({k: v for k, v in (options or {}).items() if k in per_item(kind) and any(v)})
    if not modalities.spec(kind).text_items:
        return fn(list(items), errors="skip", **kwargs)
    texts, keep, bad = read_texts(items)
    res = fn(texts, errors="skip", **kwargs)
    bad += [Skipped(keep[s.index], s.item, s.reason) for s in res.skipped]  # back to input positions
    return LoadResult(res.tensor, sorted(bad))
