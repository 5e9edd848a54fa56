"""`load(spec)`: the one way to turn "a model" into an `ImageBind`.

`spec` is a model in memory, a bindkit model folder (`save_model`), an official-format `.pth`, or a registered
config name (random weights, with a warning when called). Every part of bindkit that takes a model (evaluation,
training's `model`/`init`, the store, the service, `convert`) resolves it here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bindkit.checkpoint import CONFIG, WEIGHTS, load_model, load_official_checkpoint
from bindkit.config import ImageBindConfig, canonical
from bindkit.model import ImageBind
from bindkit.registry import get_config, list_configs

if TYPE_CHECKING:
    from bindkit.runtime.backends import RuntimeModel

ModelSpec = ImageBind | str | Path


def load(
    spec: ModelSpec | torch.nn.Module,
    modalities: list[str] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    config: ImageBindConfig | str | None = None,
) -> ImageBind:
    """An `ImageBind` in eval mode from a model, a model folder, an official `.pth` or a registered config name.

    `modalities` reads only those encoders from disk (a model in memory is used whole); `config` is the architecture
    of an official `.pth` (default `imagebind_huge`). A model in memory moves only when `device`/`dtype` are given.
    """
    if isinstance(spec, torch.nn.Module):
        return spec.to(device=device, dtype=dtype).eval()  # type: ignore[return-value]
    kind = spec_kind(spec)
    path, dev = Path(spec).expanduser(), device if device is not None else "cpu"
    if kind == "folder":
        return load_model(path, modalities=modalities, device=dev, dtype=dtype)
    if kind == "pth":
        arch = get_config(config) if isinstance(config, str) else config
        return load_official_checkpoint(path, config=arch, modalities=modalities, device=dev, dtype=dtype)
    warnings.warn(f"bindkit.load({str(spec)!r}): a registered config name gives random weights, not a trained "
                  "model; pass a model folder or a .pth for trained weights", stacklevel=2)  # fmt: skip
    arch = get_config(str(spec))
    if modalities:
        arch = arch.select([canonical(m) for m in modalities])
    return ImageBind(arch).to(device=dev, dtype=dtype).eval()


def spec_kind(spec: str | Path) -> str:
    """What a model given by name or path is: "folder", "pth" or "config"; an error naming every accepted form."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / WEIGHTS).is_file() or not (path / CONFIG).is_file():
            raise FileNotFoundError(f"{path} is not a bindkit model folder (needs {WEIGHTS} and {CONFIG})")
        return "folder"
    if path.is_file():
        return "pth"  # official format whatever the suffix (.pth, .pt); torch.load names a file that is not
    if str(spec) in list_configs():
        return "config"
    raise FileNotFoundError(f"{spec}: neither a registered config ({', '.join(list_configs())}), a bindkit model "
                            "folder nor an official checkpoint file")  # fmt: skip


def load_for(spec: ModelSpec | RuntimeModel, backend: str = "torch",
             device: str | torch.device | None = None) -> ImageBind | RuntimeModel:  # fmt: skip
    """`load` on the torch backend; a model folder's encoders on OpenVINO or ONNX Runtime otherwise (`load_model`).

    A model already loaded on a runtime (`bindkit.runtime.backends.RuntimeModel`) is returned as it is.
    """
    if not isinstance(spec, (str, Path, torch.nn.Module)):
        return spec  # already on a runtime
    if backend == "torch":
        return load(spec, device=device)
    if isinstance(spec, torch.nn.Module) or not Path(spec).expanduser().is_dir():  # load_model names what is off
        raise ValueError(f"backend {backend!r} runs a bindkit model folder or a `bindkit export` folder, not {spec!r}")
    return load_model(Path(spec).expanduser(), device=device or "cpu", backend=backend)
