"""int8 post-training quantisation of exported encoders with NNCF, calibrated on a user's files or the demo world."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from bindkit.model import ImageBind
from bindkit.runtime.export import require

CALIBRATION_BATCH = 8
TRUNK_FREE = r"^(?!.*/trunk/).*$"  # graph nodes outside the transformer trunk (ONNX names follow module paths)


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


def file_calibration(model: ImageBind, paths: list[Path], items: int) -> Callable[[str], list[torch.Tensor]]:
    """Calibration batches from a user's files and folders (the modality's file types, in sorted order), loaded
    with `bindkit.data.load` and the model config, as the store and the trainer load them. Text has no files to
    read, so it is calibrated on the demo world's captions."""

    def batches(modality: str) -> list[torch.Tensor]:
        from bindkit.data import load
        from bindkit.data.dataset import iter_files

        kind = {"vision": "image"}.get(modality, modality)
        if kind == "text":
            return world_calibration(model, items)(modality)
        files: list[Path] = []
        for p in map(Path, paths):
            files += list(iter_files(p, kind)) if p.is_dir() else [p]  # a named file: the loader checks it
        if not files:
            raise ValueError(f"no {kind} files under {[str(p) for p in paths]} to calibrate the {modality} encoder")
        return _graph_batches(model, modality, load(kind, files, config=model.config))

    return batches


def quantize(ov_model: Any, model: ImageBind, modality: str, calibration: Callable[[], Iterable[torch.Tensor]] | None,
             items: int) -> Any:  # fmt: skip
    """NNCF int8 of the trunk (transformer preset: SmoothQuant, int8 matmuls; stems and heads stay bf16) on `items`
    calibration items; error if fewer."""
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
    # The trunks only: a stem's patch embedding feeds a LayerNorm that rescales its small outputs (by ~30x on the
    # demo's depth), so int8 error there is amplified (demo depth top-1 -10 points); stems and heads are ~1% of FLOPs.
    trunks_only = nncf.IgnoredScope(patterns=[TRUNK_FREE], validate=False)
    q = nncf.quantize(ov_model, nncf.Dataset(kept), subset_size=len(kept), model_type=nncf.ModelType.TRANSFORMER,
                      ignored_scope=trunks_only)  # fmt: skip
    # The text token table (50M weights on huge) is a lookup, not a matmul: int8 per-row weights, dequantised on
    # read, keep the file at ~25% of fp32 at no cost in accuracy. Matmuls and convolutions are left as they are.
    lookups_only = nncf.IgnoredScope(types=["MatMul", "Convolution"], validate=False)
    return nncf.compress_weights(q, mode=nncf.CompressWeightsMode.INT8_ASYM, ignored_scope=lookups_only)
