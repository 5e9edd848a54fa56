"""`POST /items/{id}/heatmap`: where in a stored image a text or uploaded-file query matches, as an overlay PNG.

The query is given as for `/search` (text and/or file with weights); its renormalised sum is located in the item's
image with `bindkit.apps.locate`. Only image items have heatmaps.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import Response

from bindkit.apps.locate import locate, open_rgb
from bindkit.apps.overlay import overlay

SIDE = 256  # the overlay is drawn at least this many pixels wide


def add_heatmap_route(app: FastAPI, svc: Any, auth: list, terms: Any, finite: Any, checked_file: Any) -> None:
    """Register the route; `terms`, `finite` and `checked_file` are the app's request helpers (query terms, finite
    weights, the item's file while it is still what was embedded)."""

    @app.post("/items/{id}/heatmap", dependencies=auth,
              summary="Where in a stored image a text or file query matches: the heatmap over the image (PNG)")  # fmt: skip
    def heatmap(id: str, text: str | None = Form(None), file: UploadFile | None = File(None),
                modality: str | None = Form(None, description="the file's kind; detected when omitted"),
                text_weight: float = Form(1.0), file_weight: float = Form(1.0)) -> Response:  # fmt: skip
        row = svc.store.get(id)
        if row is None:
            raise HTTPException(404, f"no item {id!r}")
        if row["modality"] != "image":
            raise HTTPException(400, f"item {id} is {row['modality']}: heatmaps are drawn on images")
        path = checked_file(row)  # 410 when the file changed since it was embedded
        weights = finite(text_weight=text_weight, file_weight=file_weight)
        found = terms(svc, text, file, modality, None, (*weights, 1.0))
        total = sum(w * v for _, v, w in found)
        norm = float(np.linalg.norm(total))
        if not norm > 1e-6:
            raise HTTPException(400, "the weighted queries cancel out")
        try:
            # a plain inference forward pass: safe beside the batcher's thread (no shared mutable state)
            where = locate(svc.model, [path], (total / norm).astype(np.float32))[0]
        except ValueError as e:  # e.g. an image smaller than one patch
            raise HTTPException(422, str(e)) from e
        pic = open_rgb([path], 1)[0]
        scale = max(1, SIDE // max(pic.size))
        buf = io.BytesIO()
        overlay(pic, where.heatmap, where.boxes[:3], peak=where.peak, scale=scale).save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png", headers={"Cache-Control": "no-store"})
