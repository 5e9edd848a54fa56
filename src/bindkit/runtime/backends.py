"""Exported encoders behind the PyTorch model's API: `encode`, `forward` and `scale` on OpenVINO or ONNX Runtime.

`load_runtime_model` takes an export folder (its manifest says what is there) or a bindkit model folder, which is
exported once into the user cache, keyed by the model fingerprint, the runtime and its version, so later starts
only read the compiled files (OpenVINO also keeps its compiled blobs there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bindkit.config import EncoderConfig, ImageBindConfig, canonical
from bindkit.model import STEMS, ImageBind
from bindkit.runtime.export import (
    CLIPPED,
    MANIFEST,
    export,
    folder_fingerprint,
    read_manifest,
    require,
    write_manifest,
)

BACKENDS = ("torch", "openvino", "onnxruntime")
_PACKAGE = {"openvino": "openvino", "onnxruntime": "onnxruntime"}


def stem_checks(config: ImageBindConfig) -> dict[str, Any]:
    """Each encoder's PyTorch stem on the meta device (no weights allocated), for its `validate`."""
    with torch.device("meta"):
        return {m: STEMS[m](cfg) for m, cfg in config.encoders.items()}


def to_graph_input(model: ImageBind | dict[str, Any], modality: str, x: torch.Tensor) -> np.ndarray:
    """Check `x` as the PyTorch model would (same errors), then lay it out as the exported graph's input.

    `model` is an `ImageBind` or `stem_checks(config)`."""
    stem: Any = model[modality] if isinstance(model, dict) else model.encoder(modality).stem
    stem.validate(x)  # the PyTorch stem's checks: shape, dtype, token ids
    cfg: EncoderConfig = stem.cfg
    size = tuple(cfg.input_shape[-2:]) if modality in ("vision", "depth", "thermal") else None
    if size is not None and tuple(x.shape[-2:]) != size:
        raise ValueError(f"{modality}: exported encoders take {size[0]}x{size[1]} inputs, got "
                         f"{tuple(x.shape[-2:])}; resize (the PyTorch backend interpolates positions)")  # fmt: skip
    if modality == "text":
        return x.to(torch.int64).numpy()
    x = x.float()
    if modality == "vision":  # images (B,3,H,W), sets (B,S,3,H,W), videos (B,S,3,T|1,H,W) -> (B,S,3,T,H,W)
        x = x.unsqueeze(1) if x.ndim == 4 else x
        x = x.unsqueeze(3) if x.ndim == 5 else x
        x = x.expand(-1, -1, -1, cfg.kernel[0], -1, -1)  # an image is its frame repeated T times
    elif modality in CLIPPED and x.ndim == 4:
        x = x.unsqueeze(1)  # one clip
    return np.ascontiguousarray(x.numpy())


class RuntimeModel:
    """The exported encoders of one model on one runtime, with `ImageBind`'s `forward`, `encode` and `scale`."""

    def __init__(self, folder: Path, manifest: dict[str, Any], runners: dict[str, Any], backend: str):
        self.folder, self.manifest, self.runners, self.backend = folder, manifest, runners, backend
        self.config = ImageBindConfig.from_dict(manifest["config"]).select(list(runners))
        self.fingerprint: str = manifest["fingerprint"]
        self.store_key: str | None = manifest.get("store_key")  # the store table of the weights (store.model_key)
        self._stems = stem_checks(self.config)  # for the input checks only

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.runners)

    def _runner(self, modality: str) -> Any:
        m = canonical(modality)
        if m not in self.runners:
            raise KeyError(f"modality {modality!r} was not exported/loaded; {self.folder} has {list(self.runners)}")
        return self.runners[m]

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{modality: tensor} -> {modality: float32 [B, out_dim]}, scaled per modality and averaged over clips."""
        runners = {name: self._runner(name) for name in inputs}  # fail on unknown names before any compute
        return {name: torch.from_numpy(runners[name](to_graph_input(self._stems, canonical(name), x)))
                for name, x in inputs.items()}  # fmt: skip

    __call__ = forward

    @torch.no_grad()
    def encode(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unit-norm float32 embeddings (clip averages renormalised), as `ImageBind.encode`."""
        return {name: F.normalize(y.float(), dim=-1) for name, y in self.forward(inputs).items()}

    def scale(self, modality: str) -> float:
        """The logit scale of a modality's `forward` outputs (vision: 1.0)."""
        self._runner(modality)
        return float(self.manifest["scales"][canonical(modality)])

    def eval(self) -> RuntimeModel:
        """No-op (exported graphs are inference graphs); kept so code written for `ImageBind` runs unchanged."""
        return self


def _openvino_runners(folder: Path, manifest: dict[str, Any], modalities: list[str], cache: Path | None) -> dict:
    ov = require("openvino")
    core = ov.Core()
    if cache is not None:
        core.set_property({"CACHE_DIR": str(cache / "ov_blobs")})
    hint = {"fp32": "f32"}.get(manifest["precision"], "bf16")  # bf16 and int8 (non-quantised parts) run in bf16
    out = {}
    for m in modalities:
        name = manifest["encoders"][m]["files"][0]
        compiled = core.compile_model(str(folder / name), "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": torch.get_num_threads()})  # the thread count PyTorch uses, as ONNX Runtime  # fmt: skip
        request = compiled.create_infer_request()
        out[m] = lambda x, r=request: np.array(r.infer({0: x})[0], dtype=np.float32)
    return out


def _onnxruntime_runners(folder: Path, manifest: dict[str, Any], modalities: list[str]) -> dict:
    ort = require("onnxruntime")
    if manifest["format"] != "onnx":
        raise ValueError(f"{folder} is an {manifest['format']} export; ONNX Runtime needs --format onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    out = {}
    for m in modalities:
        s = ort.InferenceSession(str(folder / manifest["encoders"][m]["files"][0]), opts,
                                 providers=["CPUExecutionProvider"])  # fmt: skip
        out[m] = lambda x, s=s: s.run(None, {"x": x})[0].astype(np.float32, copy=False)
    return out


def load_exported(folder: str | Path, backend: str, modalities: list[str] | None = None,
                  cache: Path | None = None) -> RuntimeModel:  # fmt: skip
    """Open an export folder on `backend` (only the asked-for modalities; error if one was not exported)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a bindkit export (see `bindkit export`)")
    have = list(manifest["encoders"])
    wanted = [canonical(m) for m in modalities] if modalities else have
    missing = [m for m in wanted if m not in have]
    if missing:
        raise KeyError(f"{folder} has no exported {missing} encoder; it holds {have} (export them with "
                       f"`bindkit export ... --modalities {' '.join(missing)}`)")  # fmt: skip
    if backend == "openvino":
        runners = _openvino_runners(folder, manifest, wanted, cache)
    elif backend == "onnxruntime":
        runners = _onnxruntime_runners(folder, manifest, wanted)
    else:
        raise ValueError(f"backend must be one of {BACKENDS[1:]} for an export folder, got {backend!r}")
    return RuntimeModel(folder, manifest, runners, backend)


def runtime_version(backend: str) -> str:
    """The installed version of a backend's runtime (raises naming the extra when it is missing)."""
    return str(require(_PACKAGE[backend]).__version__)


def compiled_folder(model_dir: Path, backend: str, precision: str, cache_dir: Path) -> Path:
    """Where the compiled encoders of a model folder live: keyed by fingerprint, runtime, its version, precision."""
    fp = folder_fingerprint(model_dir, cache_dir)
    version = runtime_version(backend).split("-")[0]
    return cache_dir / "compiled" / f"{fp[:24]}-{backend}-{version}-{precision}"


def load_runtime_model(path: str | Path, backend: str, modalities: list[str] | None = None,
                       precision: str = "fp32", cache_dir: str | Path | None = None,
                       exported: str | Path | None = None) -> RuntimeModel:  # fmt: skip
    """An export folder, or a bindkit model folder exported on first use into `exported` (default: the cache)."""
    from bindkit.checkpoint import load_model
    from bindkit.hub import default_cache_dir

    if backend not in BACKENDS[1:]:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path, cache = Path(path), Path(cache_dir) if cache_dir else default_cache_dir()
    runtime_version(backend)  # fail early, naming the extra
    if (path / MANIFEST).is_file():
        return load_exported(path, backend, modalities, cache)
    fmt = "onnx" if backend == "onnxruntime" else "openvino"
    out = Path(exported) if exported else compiled_folder(path, backend, precision, cache)
    fp = folder_fingerprint(path, cache)
    manifest = read_manifest(out)
    if manifest is not None and manifest["fingerprint"] != fp:
        raise ValueError(f"{out} holds an export of another model (fingerprint {manifest['fingerprint'][:12]}; "
                         f"{path} is {fp[:12]}); export this model again or point elsewhere")  # fmt: skip
    wanted = [canonical(m) for m in modalities] if modalities else json.loads((path / "config.json").read_text())[
        "encoders"].keys()  # fmt: skip
    todo = [m for m in wanted if manifest is None or m not in manifest["encoders"]]
    for m in todo:  # one encoder at a time: exporting a huge encoder takes a few GB
        export(load_model(path, modalities=[m]), out, fmt, [m], precision, fp=fp)
    if todo:
        set_store_key(out, folder_store_key(path))
    return load_exported(out, backend, list(wanted), cache)


def folder_store_key(folder: Path) -> str | None:
    """`bindkit.store.model_key` of a model folder, reading only its config and output projections."""
    try:
        from bindkit.store.store import key_of
    except ImportError:  # the store extra is not installed: no store to name
        return None
    from safetensors import safe_open

    from bindkit.checkpoint import CONFIG, WEIGHTS

    raw = json.loads((folder / CONFIG).read_text())
    raw.pop("bindkit_format", None)
    config = ImageBindConfig.from_dict(raw).to_dict()
    with safe_open(str(folder / WEIGHTS), "pt") as f:
        proj = {m: f.get_tensor(f"encoders.{m}.head.proj.weight") for m in config["encoders"]}
    return key_of(config, proj)


def set_store_key(out: Path, key: str | None) -> None:
    """Record the store table key of the exported weights in the manifest."""
    manifest = read_manifest(out)
    if manifest is not None and key is not None and manifest.get("store_key") != key:
        manifest["store_key"] = key
        write_manifest(out, manifest)
