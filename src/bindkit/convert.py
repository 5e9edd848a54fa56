"""Conversion between the official `.pth` format and bindkit model folders, both directions."""

from __future__ import annotations

from pathlib import Path

from bindkit.checkpoint import save_model, save_official_checkpoint
from bindkit.resolve import load, spec_kind


def convert(src: str | Path, dst: str | Path, config: str | None = None) -> Path:
    """Official `.pth` -> bindkit folder, or bindkit folder -> official `.pth` (decided by what `src` is)."""
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise FileNotFoundError(f"{src}: no such checkpoint file or model folder")
    if spec_kind(src) == "folder":
        save_official_checkpoint(load(src), dst)
        return dst
    return save_model(load(src, config=config), dst)
