"""Conversion between the official `.pth` format and bindkit model folders, both directions.

The official format is a bare state dict, which does not say which architecture it holds. So a `.pth` that bindkit
writes gets its config beside it (`x.pth` -> `x.config.json`, the folder's `config.json` with its preprocessing
constants), and reading a `.pth` takes the config from, in order: `config` (a registered name, or a `config.json`
path), that side file, or `imagebind_huge` (the official checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path

from bindkit.checkpoint import save_model, save_official_checkpoint
from bindkit.config import ImageBindConfig
from bindkit.registry import get_config
from bindkit.resolve import load


def side_config(pth: str | Path) -> Path:
    """Where bindkit keeps the config of a `.pth` it wrote: `x.pth` -> `x.config.json`."""
    return Path(pth).with_suffix(".config.json")


def read_config(config: str | Path) -> ImageBindConfig:
    """A config from a registered name or a `config.json` file (a model folder's, or a `.config.json`)."""
    path = Path(config)
    if path.is_dir():
        path = path / "config.json"
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        raw = json.loads(path.read_text())
        raw.pop("bindkit_format", None)
        return ImageBindConfig.from_dict(raw)
    return get_config(str(config))


def convert(src: str | Path, dst: str | Path, config: str | Path | None = None) -> Path:
    """Official `.pth` -> bindkit folder, or bindkit folder -> official `.pth` (decided by what `src` is)."""
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        model = load(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        save_official_checkpoint(model, dst)
        side_config(dst).write_text(json.dumps({"bindkit_format": 1, **model.config.to_dict()}, indent=1))
        return dst
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such checkpoint file or model folder")
    if config is None and side_config(src).is_file():
        config = side_config(src)
    cfg = read_config(config) if config is not None else None
    try:
        model = load(src, config=cfg)
    except (KeyError, RuntimeError, ValueError) as e:  # missing or misshapen weights: another architecture
        name = cfg.name if cfg is not None else "imagebind_huge"
        why = str(e) if len(str(e)) < 160 else str(e)[:160] + "..."
        raise ValueError(f"{src} does not hold a {name} model ({why}); pass --config with the registered name "
                         "or the config.json of the model it was saved from") from e  # fmt: skip
    return save_model(model, dst)
