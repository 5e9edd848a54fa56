"""Run checkpoints, all safetensors + JSON, written atomically (a temporary folder renamed into place).

checkpoints/step_00000100/
  model/                 bindkit.save_model of the base weights (load with bindkit.load_model)
  lora.safetensors       adapters, when the run trains LoRA
  optimizer.safetensors  AdamW moments and step counts; param groups in the metadata
  trainer.json           step, epoch, position in the epoch
  rng-rank<r>.safetensors  each rank's torch generator state(s)
checkpoints/latest       name of the newest complete checkpoint
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bindkit.checkpoint import WEIGHTS, save_model
from bindkit.model import ImageBind
from bindkit.train import dist
from bindkit.train.lora import adapters, live_key, plain_state_dict, save_lora


def plain_model(model: ImageBind, merged: bool = False) -> ImageBind:
    """An ImageBind sharing (or, merged, holding) the live model's weights under plain keys, on the CPU."""
    sd = {k: v.detach().cpu() for k, v in plain_state_dict(model, merged).items()}
    with torch.device("meta"):
        shell = ImageBind(model.config)
    shell.load_state_dict(sd, strict=True, assign=True)
    return shell.eval()


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """AdamW state as flat tensors {'state.<param>.<name>': t} plus JSON metadata for the param groups."""
    sd = opt.state_dict()
    tensors = {f"state.{i}.{k}": v.detach().cpu().contiguous()
               for i, st in sd["state"].items() for k, v in st.items()}  # fmt: skip
    return tensors, {"param_groups": json.dumps(sd["param_groups"])}


def load_optimizer(opt: torch.optim.Optimizer, path: Path) -> None:
    """Restore AdamW state written by `optimizer_tensors`."""
    with safe_open(str(path), "pt") as f:
        groups = json.loads(f.metadata()["param_groups"])
        state: dict[int, dict[str, torch.Tensor]] = {}
        for k in f.keys():
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = f.get_tensor(k)
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's torch generator state(s)."""
    out = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore `rng_state`'s output."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(run_dir: Path, model: ImageBind, opt: torch.optim.Optimizer, trainer: dict[str, Any],
                    device: torch.device, keep: int) -> Path:  # fmt: skip
    """Write `checkpoints/step_<n>` (every rank calls this; rank 0 writes the shared files)."""
    root = run_dir / "checkpoints"
    final = root / f"step_{trainer['step']:08d}"
    tmp = root / f".step_{trainer['step']:08d}.tmp"
    if dist.rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_model(plain_model(model), tmp / "model")
        if any(True for _ in adapters(model)):
            save_lora(model, tmp / "lora.safetensors")
        tensors, meta = optimizer_tensors(opt)
        save_file(tensors, str(tmp / "optimizer.safetensors"), metadata=meta)
        (tmp / "trainer.json").write_text(json.dumps(trainer, indent=1))
    dist.barrier()
    save_file(rng_state(device), str(tmp / f"rng-rank{dist.rank()}.safetensors"))
    dist.barrier()
    if dist.rank() == 0:
        publish_checkpoint(tmp, final, keep)
    dist.barrier()
    return final


def publish_checkpoint(tmp: Path, final: Path, keep: int) -> None:
    """Rename a fully written `tmp` folder to `final` (checkpoints/step_<n>), point `latest` at it, keep the last
    `keep` step folders: a run killed at any moment leaves a complete latest checkpoint."""
    root = final.parent
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    (root / "latest.tmp").write_text(final.name)
    os.replace(root / "latest.tmp", root / "latest")
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric records past `step` (written by a run killed after its last checkpoint)."""
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in keep))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    root = run_dir / "checkpoints"
    if (root / "latest").is_file():
        path = root / (root / "latest").read_text().strip()
        if path.is_dir():
            return path
    found = sorted(root.glob("step_*"))
    return found[-1] if found else None


def load_checkpoint(path: Path, model: ImageBind, opt: torch.optim.Optimizer, device: torch.device) -> dict:
    """Restore model (base + adapters), optimizer and this rank's RNG from `path`; returns trainer.json."""
    sd = {live_key(model, k): v for k, v in load_file(path / "model" / WEIGHTS).items()}
    if (path / "lora.safetensors").is_file():
        for k, v in load_file(path / "lora.safetensors").items():
            weight, part = k.rsplit(".", 1)
            owner, name = weight.rsplit(".", 1)
            sd[f"{owner}.parametrizations.{name}.0.{part[-1]}"] = v
    model.load_state_dict(sd, strict=True)
    load_optimizer(opt, path / "optimizer.safetensors")
    rng = path / f"rng-rank{dist.rank()}.safetensors"
    if not rng.is_file():
        raise FileNotFoundError(
            f"{rng} is missing: resume with the same number of ranks as the run that saved it"
        )
    set_rng_state(load_file(rng), device)
    return json.loads((path / "trainer.json").read_text())
