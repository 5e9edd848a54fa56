"""Open-vocabulary detection whose classifier is a matrix of class embeddings, so its classes can be swapped.

Detic's recipe on bindkit's frozen features: the vision encoder's dense joint-space map (`bindkit.dense`, [h, w, D])
feeds a small convolutional head that predicts, per patch, an objectness logit, a box (distances from the patch
centre to the four sides) and a region embedding (the patch's own dense embedding plus a learned correction, unit
norm). Class scores are cosine similarities of region embeddings with the rows of `classes` [C, D] times a fixed
logit scale. Training uses text class embeddings as rows; `with_classes` replaces them by embeddings of any other
modality (spoken words, IMU traces, depth maps), with no retraining.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOGIT_SCALE = 20.0  # fixed cosine-logit scale of the classifier (1 / 0.05)


@dataclass
class Detections:
    """Per image: boxes [N, 4] xyxy in model pixels, scores [N], class indices [N] (best first)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor


def check_classes(classes: torch.Tensor, width: int) -> torch.Tensor:
    """Unit-norm float32 class rows [C, width]; an empty list or another width is an error."""
    classes = torch.as_tensor(classes).detach().float()
    if classes.ndim != 2 or classes.shape[0] == 0:
        raise ValueError(f"class embeddings must be a non-empty [C, {width}] matrix, got shape {tuple(classes.shape)}")
    if classes.shape[1] != width:
        raise ValueError(f"class embeddings are {classes.shape[1]}-d; this detector's space is {width}-d "
                         "(they come from another model)")  # fmt: skip
    return F.normalize(classes, dim=-1)


class Detector(nn.Module):
    """Objectness, box and region-embedding head over a dense map [B, h, w, D]; classifier rows in `classes`."""

    def __init__(self, width: int, classes: torch.Tensor, hidden: int = 128, stride: int = 4, patch: int = 8):
        super().__init__()
        self.width, self.stride, self.patch = width, stride, patch
        self.context = nn.Sequential(
            nn.Conv2d(width, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.GELU()
        )
        self.objectness = nn.Conv2d(hidden, 1, 1)
        self.box = nn.Conv2d(hidden, 4, 1)
        self.region = nn.Conv2d(hidden, width, 1)
        nn.init.zeros_(self.region.weight)  # starts as the frozen dense embedding itself
        nn.init.zeros_(self.region.bias)  # type: ignore[arg-type]
        self.classes: torch.Tensor
        self.register_buffer("classes", check_classes(classes, width))

    def forward(self, dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """dense [B, h, w, D] -> objectness logits [B, h, w], boxes [B, h, w, 4] xyxy px, regions [B, h, w, D]."""
        x = dense.permute(0, 3, 1, 2).float()  # (B, D, h, w)
        c = self.context(x)
        obj = self.objectness(c)[:, 0]
        sides = F.softplus(self.box(c)).permute(0, 2, 3, 1) * self.patch  # (B, h, w, 4) l, t, r, b in px
        h, w = dense.shape[1:3]
        cy = torch.arange(h, device=dense.device) * self.stride + self.patch / 2
        cx = torch.arange(w, device=dense.device) * self.stride + self.patch / 2
        cx, cy = cx.view(1, 1, w).expand(1, h, w), cy.view(1, h, 1).expand(1, h, w)
        boxes = torch.stack([cx - sides[..., 0], cy - sides[..., 1], cx + sides[..., 2], cy + sides[..., 3]], -1)
        regions = F.normalize(x + self.region(c), dim=1).permute(0, 2, 3, 1)  # (B, h, w, D)
        return obj, boxes, regions

    def class_logits(self, regions: torch.Tensor) -> torch.Tensor:
        """Cosine logits [..., C] of region embeddings [..., D] against the classifier rows."""
        return LOGIT_SCALE * regions @ self.classes.T

    def with_classes(self, classes: torch.Tensor) -> Detector:
        """A copy whose classifier rows are `classes` [C', D] (any modality); every other weight is shared."""
        rows = check_classes(classes, self.width).to(self.classes.device)
        new = copy.copy(self)
        new._buffers = dict(self._buffers)
        new._buffers["classes"] = rows
        return new

    @torch.no_grad()
    def best_box(self, dense: torch.Tensor, class_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The top box [B, 4] and its score [B] for one class: objectness x class probability, best patch."""
        obj, boxes, regions = self(dense)
        score = torch.sigmoid(obj) * self.class_logits(regions).softmax(-1)[..., class_index]  # (B, h, w)
        flat = score.flatten(1).argmax(1)
        b = torch.arange(len(flat))
        return boxes.flatten(1, 2)[b, flat], score.flatten(1)[b, flat]

    @torch.no_grad()
    def detect(self, dense: torch.Tensor, threshold: float = 0.3, iou: float = 0.5) -> list[Detections]:
        """Boxes with score (objectness x class probability) >= threshold after per-class non-maximum suppression."""
        obj, boxes, regions = self(dense)
        prob = self.class_logits(regions).softmax(-1)  # (B, h, w, C)
        conf, label = prob.max(-1)
        score = torch.sigmoid(obj) * conf
        out = []
        for s, bx, lb in zip(score.flatten(1), boxes.flatten(1, 2), label.flatten(1), strict=True):
            keep = s >= threshold
            s, bx, lb = s[keep], bx[keep], lb[keep]
            chosen = nms(bx, s, lb, iou)
            out.append(Detections(bx[chosen], s[chosen], lb[chosen]))
        return out


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix [N, M] of xyxy boxes [N, 4] and [M, 4]."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter).clamp(min=1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float) -> torch.Tensor:
    """Indices kept by greedy per-class non-maximum suppression, best score first."""
    order = scores.argsort(descending=True)
    keep: list[int] = []
    for i in order.tolist():
        if all(labels[j] != labels[i] or box_iou(boxes[i : i + 1], boxes[j : j + 1])[0, 0] < iou for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.long)
