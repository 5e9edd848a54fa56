"""int8 post-training quantisation of exported encoders with NNCF, calibrated on a user's files or the demo world."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from bindkit.model import ImageBind
from bindkit.runtime.export import require

CALIBRATION_BATCH = 8


def _graph_batches(model: ImageBind, modality: str, x: torch.Tensor) -> list[torch.Tensor]:
    """Split a loaded/generated input into graph-layout batches (checked and laid out as the backends do)."""
    from bindkit.runtime.backends import to_graph_input

    return [torch.from_numpy(to_graph_input(model, modality, x[i : i + CALIBRATION_BATCH]))
            for i in range(0, len(x), CALIBRATION_BATCH)]  # fmt: skip


def world_calibration(model: ImageBind, items: int, seed: int = 1) -> Callable[[str], list[torch.Tensor]]:
    """Calibration batches from the demo's digits world (train split), normalised with the model's constants."""

    def batches(modality: str) -> list[torch.Tensor]:
        from bindkit.demo.data import audio_options, normalize
        from bindkit.worlds import DigitsWorld, to_model_inputs

        world = DigitsWorld(seed=seed)
        kind = {"vision": "image"}.get(modality, modality)
        inst = world.sample("train", items, seed=seed, modalities=(kind,) if kind == "text" else (kind, "text"))
        cfg = model.config.encoders[modality]
        audio = audio_options(world, model.config) if modality == "audio" else None
        x = to_model_inputs(inst, {modality: cfg.input_shape}, audio_kwargs=audio)[modality]
        if {"mean", "std"} <= set(cfg.preprocess):
            x = normalize(x, cfg.preprocess)
        return _graph_batches(model, modality, x)

    return batches


def file_calibration(model: ImageBind, files: dict[str, list[Path]]) -> Callable[[str], list[torch.Tensor]]:
    """Calibration batches from a user's files per modality, loaded with `bindkit.data.load` and the model config."""

    def batches(modality: str) -> list[torch.Tensor]:
        from bindkit.data import load

        if modality not in files:
            raise ValueError(f"no calibration files for {modality}; give some or use the demo world")
        return _graph_batches(model, modality, load(modality, files[modality], config=model.config))

    return batches


def quantize(ov_model: Any, model: ImageBind, modality: str, calibration: Callable[[], Iterable[torch.Tensor]] | None,
             items: int) -> Any:  # fmt: skip
    """NNCF int8 (transformer preset: SmoothQuant, int8 matmuls) on `items` calibration items; error if fewer."""
    nncf = require("nncf")
    data = list(calibration() if calibration is not None else world_calibration(model, items)(modality))
    have = sum(len(b) for b in data)
    if have < items:
        raise ValueError(f"{modality}: the calibration set has {have} items, fewer than the {items} asked; give "
                         "more files or ask for fewer items")  # fmt: skip
    used, kept = 0, []
    for b in data:  # exactly `items` items
        kept.append(b[: items - used].numpy())
        used += len(kept[-1])
        if used == items:
            break
    return nncf.quantize(ov_model, nncf.Dataset(kept), subset_size=len(kept), model_type=nncf.ModelType.TRANSFORMER)
