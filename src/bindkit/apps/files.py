"""File-level entry points behind `bindkit locate`: load the model, answer, write an overlay PNG and a JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bindkit.apps.boxes import Box
from bindkit.apps.locate import locate, open_rgb
from bindkit.apps.overlay import overlay
from bindkit.resolve import load


def run_locate(model: str | Path | Any, image: str | Path, out: str | Path, text: str | None = None,
               file: str | Path | None = None, modality: str | None = None, size: int | None = None,
               threshold: float = 0.5, method: str = "value") -> dict[str, Any]:  # fmt: skip
    """Locate one query (a text, or a file of `modality` / detected) in one image; write `<stem>.locate.png/.json`."""
    if (text is None) == (file is None):
        raise ValueError("give exactly one query: a text or a file (--audio/--file)")
    query: Any = text if text is not None else Path(file)  # type: ignore[arg-type]
    m = load(model)
    found = locate(m, [Path(image)], query, size=size, threshold=threshold, modality=modality, method=method)[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(image).stem
    pic = open_rgb([Path(image)], 1)[0]
    scale = max(1, 256 // max(pic.size))  # small images are drawn larger so the boxes stay visible
    overlay(pic, found.heatmap, found.boxes, peak=found.peak, scale=scale).save(out / f"{stem}.locate.png")
    answer = {"image": str(image), "query": text if text is not None else str(file), **found.as_dict()}
    (out / f"{stem}.locate.json").write_text(json.dumps(answer, indent=1))
    return answer


def class_rows(model: Any, texts: list[str] | None, files: list[str] | None) -> tuple[list[str], Any]:
    """Classifier rows from class texts or `name=path` files of any modality: (names, [C, D] tensor)."""
    import torch

    from bindkit.apps.query import check_query, embed_query

    names: list[str] = list(texts or [])
    queries: list[Any] = list(texts or [])
    for spec in files or []:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--class-file takes NAME=PATH, got {spec!r}")
        names.append(name)
        queries.append(Path(path))
    for q in queries:  # every class checked before any is embedded
        check_query(model, q)
    rows = [embed_query(model, q).vector for q in queries]
    return names, torch.stack(rows) if rows else None


def run_detect(model: str | Path | Any, detector: str | Path, image: str | Path, out: str | Path,
               texts: list[str] | None = None, files: list[str] | None = None, threshold: float = 0.3,
               ) -> dict[str, Any]:  # fmt: skip
    """Detect in one image with a saved detector, its classes optionally swapped for texts or files; writes
    `<stem>.detect.png` and `.json`. Boxes are in the image's pixels."""
    from bindkit.apps.detect_train import load_detector
    from bindkit.apps.locate import to_tensor
    from bindkit.dense import dense_embeddings
    if texts is not None and not texts and not files:
        raise ValueError("the class list is empty: give at least one class text or file")
    m = load(model)
    det, meta = load_detector(detector, m)  # checks the vision encoder's fingerprint first
    pic = open_rgb([Path(image)], det.patch)[0]  # a too-small image is refused before the classes are embedded
    names = list(meta.get("class_names") or [])
    if texts or files:
        names, rows = class_rows(m, texts, files)
        det = det.with_classes(rows)
    size = (meta["grid"] - 1) * det.stride + det.patch
    dense = dense_embeddings(m.encoder("vision"), to_tensor([pic], size), meta.get("method", "value")).dense
    found = det.detect(dense, threshold)[0]
    sx, sy = pic.size[0] / size, pic.size[1] / size
    boxes = [Box(int(b[0] * sx), int(b[1] * sy), int(np.ceil(b[2] * sx)), int(np.ceil(b[3] * sy)), float(s), (0, 0))
             for b, s in zip(found.boxes.tolist(), found.scores.tolist(), strict=True)]  # fmt: skip
    labels = [names[int(c)] if int(c) < len(names) else str(int(c)) for c in found.labels]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(image).stem
    scale = max(1, 256 // max(pic.size))
    overlay(pic, None, boxes, [f"{n} {b.score:.2f}" for n, b in zip(labels, boxes, strict=True)],
            scale=scale).save(out / f"{stem}.detect.png")  # fmt: skip
    answer = {"image": str(image), "classes": names,
              "detections": [{"label": n, "score": b.score, "box": list(b.xyxy)} for n, b in zip(labels, boxes, strict=True)]}  # fmt: skip
    (out / f"{stem}.detect.json").write_text(json.dumps(answer, indent=1))
    return answer
