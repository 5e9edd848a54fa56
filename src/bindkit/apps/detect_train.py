"""Train, save and load a `Detector` on a frozen model's dense features, in the trainer's run-directory style.

Run directory:

    config.json            DetectorTrainConfig and the feature geometry
    metrics.jsonl          one record per logged step (loss, class accuracy on object patches, ...)
    checkpoints/step_<n>/  detector + AdamW state + step + RNG, written every `checkpoint_every` steps (resume);
                           checkpoints/latest names the newest (the trainer's layout, `bindkit.train.ckpt`)
    plots/                 loss.png, accuracy.png (`bindkit.train.plots`)
    detector/              the final detector: detector.safetensors + detector.json (load with `load_detector`)

Targets per patch: a patch whose centre lies inside a digit's box is an object patch of that digit; its box target is
that box. Losses: objectness BCE over all patches, class cross-entropy against the text rows and L1 + (1 - IoU) box
regression on object patches. The encoder is frozen: its dense maps are computed once, before training.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from bindkit.apps.detect import Detector, box_iou, check_classes
from bindkit.train.ckpt import (
    latest_checkpoint,
    load_optimizer,
    optimizer_tensors,
    publish_checkpoint,
    truncate_metrics,
)
from bindkit.train.optim import lr_factor

FILES = ("detector.safetensors", "detector.json")


@dataclass(frozen=True)
class DetectorTrainConfig:
    """Head size and schedule."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    hidden: int = 128
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    class_names: tuple[str, ...] = field(default_factory=tuple)
    method: str = "value"  # the `bindkit.dense` method that made the maps (inference must use the same)


def vision_fingerprint(model: Any) -> str:
    """The identity of the model's vision encoder (config and every weight), as the trainer's cache keys it."""
    from bindkit.train.cache import fingerprint

    return fingerprint(model.encoder("vision"), {})


def patch_targets(boxes: list[torch.Tensor], labels: list[torch.Tensor], h: int, w: int, stride: int, patch: int,
                  ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Per image: class target [h, w] (-1 = background) and box target [h, w, 4] (model pixels)."""
    cls = torch.full((len(boxes), h, w), -1, dtype=torch.long)
    tgt = torch.zeros(len(boxes), h, w, 4)
    cy = (torch.arange(h) * stride + patch / 2).view(h, 1)
    cx = (torch.arange(w) * stride + patch / 2).view(1, w)
    for i, (bx, lb) in enumerate(zip(boxes, labels, strict=True)):
        for b, c in zip(bx, lb, strict=True):
            inside = (cx >= b[0]) & (cx <= b[2]) & (cy >= b[1]) & (cy <= b[3])  # (h, w)
            cls[i][inside] = int(c)
            tgt[i][inside] = b.float()
    return cls, tgt


def detector_loss(det: Detector, dense: torch.Tensor, cls: torch.Tensor, tgt: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Objectness BCE + class CE + box L1 and (1 - IoU) on object patches; returns (loss, logged values)."""
    obj, boxes, regions = det(dense)
    pos = cls >= 0
    l_obj = F.binary_cross_entropy_with_logits(obj, pos.float())
    logits = det.class_logits(regions[pos])  # (P, C)
    l_cls = F.cross_entropy(logits, cls[pos]) if pos.any() else obj.sum() * 0
    pb, tb = boxes[pos], tgt[pos]
    iou = box_iou(pb, tb).diagonal() if pos.any() else obj.new_zeros(1)
    l_box = (pb - tb).abs().mean() / det.patch + (1 - iou).mean() if pos.any() else obj.sum() * 0
    acc = (logits.argmax(-1) == cls[pos]).float().mean() if pos.any() else obj.new_zeros(())
    loss = l_obj + l_cls + l_box
    parts = {"loss": loss, "obj": l_obj, "cls": l_cls, "box": l_box, "acc": acc, "iou": iou.mean()}
    return loss, {k: float(v.detach()) for k, v in parts.items()}


def save_detector(det: Detector, folder: Path, meta: dict[str, Any]) -> Path:
    """`detector.safetensors` (weights and classifier rows) and `detector.json` (geometry, fingerprint, classes)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in det.state_dict().items()}, str(folder / FILES[0]))
    info = {"width": det.width, "hidden": det.context[0].out_channels, "stride": det.stride, "patch": det.patch}
    (folder / FILES[1]).write_text(json.dumps({**info, **meta}, indent=1))
    return folder


def load_detector(folder: str | Path, model: Any) -> tuple[Detector, dict[str, Any]]:
    """A detector saved by `save_detector`, checked against `model`'s vision encoder before it is built."""
    folder = Path(folder)
    if not all((folder / f).is_file() for f in FILES):
        raise FileNotFoundError(f"{folder} is not a detector folder (needs {FILES[0]} and {FILES[1]})")
    meta = json.loads((folder / FILES[1]).read_text())
    mine = vision_fingerprint(model)
    if meta.get("vision_fingerprint") != mine:
        raise ValueError(f"detector {folder} was trained on a vision encoder with fingerprint "
                         f"{meta.get('vision_fingerprint')}; this model's is {mine}")  # fmt: skip
    sd = load_file(str(folder / FILES[0]))
    det = Detector(meta["width"], sd["classes"], meta["hidden"], meta["stride"], meta["patch"])
    det.load_state_dict(sd)
    return det.eval(), meta


def train_detector(model: Any, dense: torch.Tensor, boxes: list[torch.Tensor], labels: list[torch.Tensor],
                   classes: torch.Tensor, run_dir: str | Path, cfg: DetectorTrainConfig | None = None,
                   stop_after: int | None = None, geometry: tuple[int, int] | None = None,
                   ) -> tuple[Detector, Path | None]:  # fmt: skip
    """Train on dense maps [N, h, w, D] with boxes (model px) and labels per image; resumes from the run's
    latest checkpoint; `stop_after` stops (checkpointed, no final folder) at that step. Returns the detector and
    its saved folder. `geometry`: the maps' (patch, stride) in model pixels (default: the encoder's patches)."""
    cfg = cfg or DetectorTrainConfig()
    enc = model.encoder("vision")
    rows = check_classes(classes, dense.shape[-1])
    if len(dense) != len(boxes) or len(boxes) != len(labels):
        raise ValueError(f"{len(dense)} maps, {len(boxes)} box lists and {len(labels)} label lists differ")
    run = Path(run_dir)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        patch, stride = geometry or (enc.cfg.kernel[1], enc.cfg.stride[1])
        det = Detector(dense.shape[-1], rows, cfg.hidden, stride, patch)
    opt = torch.optim.AdamW(det.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    cls, tgt = patch_targets(boxes, labels, dense.shape[1], dense.shape[2], det.stride, det.patch)
    step, gen = _start(run, cfg, det, opt)
    step = _steps(run, cfg, det, opt, gen, step, min(cfg.steps, stop_after or cfg.steps), (dense, cls, tgt))
    if step < cfg.steps:
        return det.eval(), None
    from bindkit.train.plots import plot_metrics

    plot_metrics(run / "metrics.jsonl", run / "plots")
    meta = {"vision_fingerprint": vision_fingerprint(model), "class_names": list(cfg.class_names), "steps": step,
            "method": cfg.method,
            "grid": int(dense.shape[1])}  # the dense map's side: images are resized to (grid-1)*stride+patch px
    return det.eval(), save_detector(det, run / "detector", meta)


def _steps(run: Path, cfg: DetectorTrainConfig, det: Detector, opt: torch.optim.Optimizer, gen: torch.Generator,
           step: int, end: int, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> int:  # fmt: skip
    """Optimise from `step` to `end` (cosine LR, `bindkit.train.optim.lr_factor`), logging and checkpointing."""
    dense, cls, tgt = data  # (N, h, w, D), (N, h, w), (N, h, w, 4)
    with open(run / "metrics.jsonl", "a") as log:
        while step < end:
            idx = torch.randint(len(dense), (min(cfg.batch_size, len(dense)),), generator=gen)
            for g in opt.param_groups:
                g["lr"] = cfg.lr * lr_factor(step, cfg.steps, 0)
            loss, logged = detector_loss(det, dense[idx], cls[idx], tgt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                log.write(json.dumps({"step": step, "pair": "detector", "batch": len(idx), **logged}) + "\n")
                log.flush()
            if step % cfg.checkpoint_every == 0 or step == end:
                _checkpoint(run, det, opt, step, gen)
    return step


def _start(run: Path, cfg: DetectorTrainConfig, det: Detector, opt: torch.optim.Optimizer,
           ) -> tuple[int, torch.Generator]:  # fmt: skip
    """Resume from checkpoints/latest when present (same config), else start a fresh run directory."""
    gen = torch.Generator().manual_seed(cfg.seed)
    ck = latest_checkpoint(run)
    if ck is not None and (ck / "trainer.json").is_file():
        saved = json.loads((run / "config.json").read_text())
        if saved["config"] != json.loads(json.dumps(asdict(cfg))):
            raise ValueError(f"{run} holds a run with another config; use a new run directory")
        det.load_state_dict(load_file(str(ck / FILES[0])))
        load_optimizer(opt, ck / "optimizer.safetensors")
        state = json.loads((ck / "trainer.json").read_text())
        gen.set_state(load_file(str(ck / "rng.safetensors"))["gen"])
        truncate_metrics(run / "metrics.jsonl", state["step"])
        return int(state["step"]), gen
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"config": asdict(cfg)}, indent=1))
    (run / "metrics.jsonl").write_text("")
    return 0, gen


def _checkpoint(run: Path, det: Detector, opt: torch.optim.Optimizer, step: int, gen: torch.Generator) -> None:
    """Write checkpoints/step_<n> atomically and point checkpoints/latest at it (the trainer's layout)."""
    root = run / "checkpoints"
    final, tmp = root / f"step_{step:08d}", root / f".step_{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous() for k, v in det.state_dict().items()}, str(tmp / FILES[0]))
    tensors, meta = optimizer_tensors(opt)
    save_file(tensors, str(tmp / "optimizer.safetensors"), metadata=meta)
    save_file({"gen": gen.get_state()}, str(tmp / "rng.safetensors"))
    (tmp / "trainer.json").write_text(json.dumps({"step": step}))
    publish_checkpoint(tmp, final, keep=1)
