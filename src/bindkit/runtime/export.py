"""Export each encoder of a bindkit model to ONNX or OpenVINO IR (fp32, bf16 or int8), with a manifest.

Layout of an export folder:
  manifest.json        fingerprint, config, scales, loader constants, precision, one entry per encoder
  <modality>.onnx      (format onnx; a vision encoder over 2 GiB keeps its weights in <modality>.onnx.data)
  <modality>.xml/.bin  (format openvino)
Each graph takes the clip layout, batch and clips dynamic: vision (B, S, 3, T, H, W), audio (B, S, 1, mel, frames),
depth/thermal (B, S, 1, H, W), text (B, context) int64, imu (B, 6, samples); it returns `ImageBind.forward`'s output
(B, out): scaled per modality and averaged over clips. Input checks run in Python (`backends.to_graph_input`), not
in the graph. The TorchScript-based ONNX exporter is used (`dynamo=False`): the dynamo one fails on these encoders.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bindkit.config import ImageBindConfig, canonical
from bindkit.model import Encoder, ImageBind

MANIFEST = "manifest.json"
EXPORT_VERSION = 1  # bump when the graphs change, so compiled caches are rebuilt
FORMATS, PRECISIONS = ("onnx", "openvino"), ("fp32", "bf16", "int8")
CLIPPED = ("vision", "audio", "depth", "thermal")  # modalities whose graphs take a clip dimension
OPSET = 17


def require(package: str) -> Any:
    """Import an optional runtime package, or fail naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise ImportError(f"{package} is not installed; install the runtime extra: pip install 'bindkit[runtime]'") \
            from e  # fmt: skip


def fingerprint(model: ImageBind) -> str:
    """sha256 over the config and every weight's bytes, in state-dict order (ties an export to its weights)."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, t in model.state_dict().items():
        t = t.detach().contiguous().cpu()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def folder_fingerprint(folder: Path, cache_dir: Path) -> str:
    """`fingerprint` of a model folder (or official .pth), memoised by file size and mtime: later starts skip it."""
    from bindkit.checkpoint import CONFIG, WEIGHTS

    files = [folder] if folder.is_file() else [folder / CONFIG, folder / WEIGHTS]
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    memo = cache_dir / "fingerprints" / hashlib.sha256(stamp.encode()).hexdigest()
    if memo.is_file():
        return memo.read_text().strip()
    fp = fingerprint(load_source(folder))
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(fp)
    return fp


class Graph(nn.Module):
    """One encoder over the clip layout: flatten clips, embed items, un-flatten and average (ImageBind.forward)."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder
        self.clipped = encoder.cfg.modality in CLIPPED

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.clipped:
            return self.encoder.embed_items(x)  # (B, out)
        B, S = x.shape[0], x.shape[1]
        y = self.encoder.embed_items(x.flatten(0, 1))  # (B*S, out)
        return y.reshape(B, S, -1).mean(1)


def example_input(model: ImageBind, modality: str, batch: int = 2, clips: int = 2) -> torch.Tensor:
    """A valid graph input: random floats, or token ids holding an end-of-text token."""
    cfg = model.config.encoders[modality]
    g = torch.Generator().manual_seed(0)
    if modality == "text":
        ids = torch.randint(1, cfg.vocab_size - 1, (batch, cfg.input_shape[0]), generator=g)
        ids[:, -1] = cfg.vocab_size - 1
        return ids
    shape = cfg.input_shape
    if modality == "vision":
        shape = (3, cfg.kernel[0], *cfg.input_shape[1:])  # clips of T frames
    lead = (batch, clips) if modality in CLIPPED else (batch,)
    return torch.randn(*lead, *shape, generator=g)


def export_onnx(model: ImageBind, modality: str, path: Path) -> Path:
    """Write one encoder as ONNX (fp32, TorchScript exporter), batch and clip dimensions dynamic."""
    require("onnx")
    graph = Graph(model.encoder(modality)).eval().float()
    axes = {0: "batch", 1: "clips"} if modality in CLIPPED else {0: "batch"}
    x = example_input(model, modality)
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing warns on every shape test in the stems; the traced branch is the one this layout takes.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")  # indices are non-negative
        torch.onnx.export(graph, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=OPSET,
                          dynamic_axes={"x": axes, "y": {0: "batch"}}, dynamo=False)  # fmt: skip
    return path


def _convert_openvino(model: ImageBind, modality: str, out: Path, precision: str,
                      calibration: Callable[[], Iterable[torch.Tensor]] | None, items: int) -> list[str]:  # fmt: skip
    """ONNX -> OpenVINO IR (bf16 stores fp16-compressed weights; int8 runs NNCF); returns the files written."""
    ov = require("openvino")
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        ov_model = ov.convert_model(str(export_onnx(model, modality, Path(tmp) / f"{modality}.onnx")))
        if precision == "int8":
            from bindkit.runtime.quantize import quantize

            ov_model = quantize(ov_model, model, modality, calibration, items)
        ov.save_model(ov_model, str(out / f"{modality}.xml"), compress_to_fp16=precision == "bf16")
    return [f"{modality}.xml", f"{modality}.bin"]


def loader_constants(config: ImageBindConfig) -> dict[str, Any]:
    """What a caller needs to build inputs without bindkit's torch model: shapes, normalisation, tokens."""
    from bindkit.data.images import CLIP_MEAN, CLIP_STD

    enc = config.encoders
    return {"image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD),
            "input_shape": {m: list(c.input_shape) for m, c in enc.items()},
            "frames_per_clip": enc["vision"].kernel[0] if "vision" in enc else None,
            "preprocess": {m: c.preprocess for m, c in enc.items()}}  # fmt: skip


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of an export folder, or None when there is none."""
    path = out / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def _start_manifest(model: ImageBind, out: Path, fmt: str, precision: str, fp: str) -> dict[str, Any]:
    """The folder's manifest to extend; refuses a folder holding another model, format or precision."""
    old = read_manifest(out)
    if old is not None:
        if old["fingerprint"] != fp:
            raise ValueError(f"{out} holds an export of another model (fingerprint {old['fingerprint'][:12]}, this "
                             f"model is {fp[:12]}); export into an empty folder")  # fmt: skip
        if (old["format"], old["precision"]) != (fmt, precision):
            raise ValueError(f"{out} holds a {old['format']} {old['precision']} export; asked for {fmt} {precision}")
        return old
    return {"bindkit_export": EXPORT_VERSION, "format": fmt, "precision": precision, "fingerprint": fp,
            "config": {"name": model.config.name, "encoders": {}}, "scales": {}, "loader": {},
            "encoders": {}, "versions": {"torch": torch.__version__}}  # fmt: skip


def export(model: ImageBind, out: str | Path, fmt: str = "onnx", modalities: list[str] | None = None,
           precision: str = "fp32", calibration: Callable[[str], Iterable[torch.Tensor]] | None = None,
           calibration_items: int = 300, fp: str | None = None) -> Path:  # fmt: skip
    """Write each asked-for encoder of `model` (default: all) to `out` in `fmt` at `precision`; returns `out`.

    ONNX is fp32 only (ONNX Runtime's CPU kernels have no bf16); OpenVINO stores bf16 as fp16-compressed weights (its
    CPU plugin computes in bf16) and int8 as NNCF-quantised trunks calibrated on `calibration(modality)`, which
    yields graph-layout batches (default: the demo world's items), `calibration_items` items in all.
    """
    if fmt not in FORMATS or precision not in PRECISIONS:
        raise ValueError(f"format must be one of {FORMATS} and precision one of {PRECISIONS}; got {fmt}, {precision}")
    if fmt == "onnx" and precision != "fp32":
        raise ValueError(f"ONNX export is fp32 only; use --format openvino for {precision}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _start_manifest(model, out, fmt, precision, fp or fingerprint(model))
    if fp is None:  # a whole model: the store table its embeddings go to (partial exports get it from the folder)
        manifest["store_key"] = _store_key(model)
    for m in [canonical(m) for m in modalities or list(model.encoders)]:
        model.encoder(m)  # unknown modality: KeyError naming the model's modalities
        if fmt == "onnx":
            files = [export_onnx(model, m, out / f"{m}.onnx").name]
            files += [f"{m}.onnx.data"] if (out / f"{m}.onnx.data").exists() else []
        else:
            calib = (lambda m=m: calibration(m)) if calibration is not None else None
            files = _convert_openvino(model, m, out, precision, calib, calibration_items)
        manifest["config"]["encoders"][m] = model.config.to_dict()["encoders"][m]  # merged across partial models
        manifest["loader"] = loader_constants(ImageBindConfig.from_dict(manifest["config"]))
        manifest["encoders"][m] = {"files": files, "clips": m in CLIPPED}
        manifest["scales"][m] = model.scale(m)
        write_manifest(out, manifest)
    return out


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically, with the installed runtime versions."""
    manifest["versions"].update(_runtime_versions())
    tmp = out / f".{MANIFEST}.{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)  # atomic: a crash never leaves a half-written manifest


def _runtime_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("onnx", "onnxruntime", "openvino", "nncf"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def _store_key(model: ImageBind) -> str | None:
    try:
        from bindkit.store.store import model_key
    except ImportError:  # the store extra is not installed
        return None
    return model_key(model)


def load_source(path: Path, modalities: list[str] | None = None) -> ImageBind:
    """A bindkit model folder, or an official .pth (imagebind_huge), in fp32 (only `modalities` when given)."""
    from bindkit.checkpoint import load_model, load_official_checkpoint

    if path.is_file():
        return load_official_checkpoint(path, modalities=modalities)
    return load_model(path, modalities=modalities)


def export_path(model: str | Path, out: str | Path, fmt: str = "onnx", modalities: list[str] | None = None,
                precision: str = "fp32", calibration: list[Path] | None = None, calibration_items: int = 300,
                cache_dir: str | Path | None = None) -> Path:  # fmt: skip
    """`export` a model folder or official .pth one encoder at a time (a huge encoder alone takes a few GB)."""
    from bindkit.hub import default_cache_dir
    from bindkit.runtime.backends import folder_store_key, set_store_key

    src = Path(model)
    fp = folder_fingerprint(src, Path(cache_dir) if cache_dir else default_cache_dir())
    names = [canonical(m) for m in modalities] if modalities else list(load_config(src).encoders)
    calib = None
    for m in names:
        part = load_source(src, [m])
        if calibration and precision == "int8":
            from bindkit.runtime.quantize import file_calibration

            calib = file_calibration(part, calibration, calibration_items)
        export(part, out, fmt, [m], precision, calib, calibration_items, fp=fp)
        del part
    if src.is_dir():
        set_store_key(Path(out), folder_store_key(src))
    return Path(out)


def load_config(path: Path) -> ImageBindConfig:
    """The config of a model folder (config.json) or of an official .pth (imagebind_huge)."""
    from bindkit.checkpoint import CONFIG
    from bindkit.registry import get_config

    if path.is_file():
        return get_config("imagebind_huge")
    raw = json.loads((path / CONFIG).read_text())
    raw.pop("bindkit_format", None)
    return ImageBindConfig.from_dict(raw)
