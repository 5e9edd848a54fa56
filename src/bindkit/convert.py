"""Conversion between the official `.pth` format and bindkit model folders, both directions."""

from __future__ import annotations

from pathlib import Path

from bindkit.checkpoint import load_model, load_official_checkpoint, save_model, save_official_checkpoint
from bindkit.registry import get_config


def convert(src: str | Path, dst: str | Path, config: str | None = None) -> Path:
    """Official `.pth` -> bindkit folder, or bindkit folder -> official `.pth` (decided by what `src` is)."""
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        save_official_checkpoint(load_model(src), dst)
        return dst
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such checkpoint file or model folder")
    model = load_official_checkpoint(src, config=get_config(config) if config else None)
    return save_model(model, dst)
