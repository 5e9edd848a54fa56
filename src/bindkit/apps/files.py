"""File-level entry points behind `bindkit locate`: load the model, answer, write an overlay PNG and a JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bindkit.apps.locate import locate, open_rgb
from bindkit.apps.overlay import overlay


def load_for_apps(model: str | Path | Any, modalities: list[str] | None = None) -> Any:
    """A model object as given, or a bindkit model folder loaded in eval mode (only `modalities` if given)."""
    if not isinstance(model, str | Path):
        return model
    from bindkit.checkpoint import load_model

    return load_model(model, modalities=modalities)


def run_locate(model: str | Path | Any, image: str | Path, out: str | Path, text: str | None = None,
               file: str | Path | None = None, modality: str | None = None, size: int | None = None,
               threshold: float = 0.5) -> dict[str, Any]:  # fmt: skip
    """Locate one query (a text, or a file of `modality` / detected) in one image; write `<stem>.locate.png/.json`."""
    if (text is None) == (file is None):
        raise ValueError("give exactly one query: a text or a file (--audio/--file)")
    query: Any = text if text is not None else Path(file)  # type: ignore[arg-type]
    m = load_for_apps(model)
    found = locate(m, [Path(image)], query, size=size, threshold=threshold, modality=modality)[0]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(image).stem
    pic = open_rgb([Path(image)], 1)[0]
    scale = max(1, 256 // max(pic.size))  # small images are drawn larger so the boxes stay visible
    overlay(pic, found.heatmap, found.boxes, peak=found.peak, scale=scale).save(out / f"{stem}.locate.png")
    answer = {"image": str(image), "query": text if text is not None else str(file), **found.as_dict()}
    (out / f"{stem}.locate.json").write_text(json.dumps(answer, indent=1))
    return answer
