"""The HTTP service: `create_app(model, store_dir)` -> a FastAPI app with `/embed`, `/search`, `/items/{id}`,
`/health`, the OpenAPI schema (`/openapi.json`, `/docs`) and the search page at `/`.

With a `token`, every endpoint but `/health`, the page and its static files asks for `Authorization: Bearer
<token>` (the page reads the token from its URL fragment: `http://host:port/#token=...`). Uploads go through
`uploads.py`: limited in size and type, checked, and written only to a temporary folder.
"""

from __future__ import annotations

import mimetypes
import secrets
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from bindkit.model import ImageBind
from bindkit.resolve import load
from bindkit.serve.thumbs import thumbnail
from bindkit.serve.uploads import MAX_UPLOAD_BYTES, UploadError, read_limited, saved_upload
from bindkit.store.detect import KINDS, DetectError, detect_modality, normalize_kind
from bindkit.store.search import QueryError, embed_item, embed_query
from bindkit.store.store import Hit, Store, quote

STATIC = Path(__file__).parent / "static"
MAX_K = 100
MAX_TEXT = 2000  # characters of a text query


def _auth(token: str | None) -> Any:
    """A dependency that checks the bearer token (a no-op without one)."""
    bearer = HTTPBearer(auto_error=False, description="the token given to `bindkit serve --token`")

    def check(cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if token is None:
            return
        if cred is None or not secrets.compare_digest(cred.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return check


def _kinds(modalities: str | None) -> list[str] | None:
    if not modalities:
        return None
    try:
        return [normalize_kind(m.strip()) for m in modalities.split(",") if m.strip()] or None
    except ValueError as e:
        raise HTTPException(400, str(e)) from e


def _hit_json(h: Hit) -> dict[str, Any]:
    has_thumb = h.modality != "text"
    return dict(id=h.id, name=Path(h.path.split("#")[0]).name, modality=h.modality, score=round(h.score, 5),
                label=h.label, meta=h.meta, text=h.text[:300], url=f"/items/{h.id}",
                thumb=f"/items/{h.id}?thumb=true" if has_thumb else None)  # fmt: skip


class Service:
    """The loaded model and store, with a lock so that one request at a time runs the model."""

    def __init__(self, model: ImageBind | str | Path, store_dir: str | Path, table: str | None, max_upload: int):
        self.model = load(model)
        # refresh_s: rows written by a concurrent `bindkit embed` show up within seconds
        self.store = Store.for_model(store_dir, self.model, table, refresh_s=5.0)
        self.max_upload = max_upload
        self.lock = threading.Lock()

    def upload_vector(self, upload: UploadFile, modality: str | None) -> tuple[str, np.ndarray]:
        """Check, store temporarily, detect and embed one uploaded file -> (kind, vector)."""
        data = read_limited(upload.file, self.max_upload)
        with saved_upload(upload.filename, data) as path:
            try:
                kind = normalize_kind(modality) if modality and modality != "auto" else detect_modality(path)
            except (DetectError, ValueError) as e:
                raise UploadError(f"{upload.filename}: {e}") from e
            with self.lock:
                return kind, embed_item(self.model, kind, path)

    def text_vector(self, text: str) -> np.ndarray:
        if len(text) > MAX_TEXT:
            raise QueryError(f"text query longer than {MAX_TEXT} characters")
        with self.lock:
            return embed_query(self.model, None, "text", text)


def _terms(svc: Service, text: str | None, file: UploadFile | None, modality: str | None, item: str | None,
           weights: tuple[float, float, float]) -> list[tuple[str, np.ndarray, float]]:  # fmt: skip
    """The (kind, vector, weight) terms of a search request."""
    terms = []
    if text and text.strip():
        terms.append(("text", _errors(lambda: svc.text_vector(text)), weights[0]))
    if file is not None and file.filename:
        kind, vec = _errors(lambda: svc.upload_vector(file, modality))
        terms.append((kind, vec, weights[1]))
    if item:
        terms.append(("id", _errors(lambda: embed_query(None, svc.store, "id", item)), weights[2]))
    if not terms:
        raise HTTPException(400, "give a text, a file or an item to search with")
    return terms


def _errors(fn: Any) -> Any:
    """Turn upload and query errors into HTTP errors with the reason."""
    try:
        return fn()
    except UploadError as e:
        raise HTTPException(e.status, str(e)) from e
    except QueryError as e:
        raise HTTPException(400, str(e)) from e


def create_app(model: ImageBind | str | Path, store_dir: str | Path, token: str | None = None, table: str | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:  # fmt: skip
    """The service for a model (a folder from `save_model`, or a loaded `ImageBind`) and a store folder or URI."""
    svc = Service(model, store_dir, table, max_upload_bytes)
    app = FastAPI(
        title="bindkit", version="0.1.0", description="Search one embedding space across six modalities."
    )
    app.state.service = svc
    auth = [Depends(_auth(token))]
    _routes(app, svc, auth)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _routes(app: FastAPI, svc: Service, auth: list) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/health", summary="Service status and what the store holds")
    def health() -> dict[str, Any]:
        counts = {k: svc.store.count(f"modality = {quote(k)}") for k in KINDS}
        return dict(status="ok", model=svc.model.config.name, table=svc.store.name, items=sum(counts.values()),
                    kinds={k: n for k, n in counts.items() if n}, indexed=svc.store.has_index(),
                    modalities=list(svc.model.config.encoders))  # fmt: skip

    @app.post("/embed", dependencies=auth, summary="Embed a text or an uploaded file")
    def embed(text: str | None = Form(None), file: UploadFile | None = File(None),
              modality: str | None = Form(None, description="the file's kind; detected when omitted")) -> dict:  # fmt: skip
        if (text is None) == (file is None):
            raise HTTPException(400, "give exactly one of `text` or `file`")
        kind, vec = _errors(
            lambda: svc.upload_vector(file, modality) if file else ("text", svc.text_vector(text))
        )
        return {"modality": kind, "dim": int(vec.shape[0]), "vector": vec.tolist()}

    @app.post(
        "/search", dependencies=auth, summary="Nearest items to a weighted sum of text, file and item queries"
    )
    def search(text: str | None = Form(None), file: UploadFile | None = File(None),
               modality: str | None = Form(None, description="the file's kind; detected when omitted"),
               item: str | None = Form(None, description="the id of a stored item to query with"),
               text_weight: float = Form(1.0), file_weight: float = Form(1.0), item_weight: float = Form(1.0),
               modalities: str | None = Form(None, description="comma-separated kinds to return (default: all)"),
               label: str | None = Form(None, description="only items with this label"),
               group: bool = Form(False, description="k results per kind instead of k overall"),
               k: int = Form(12, ge=1, le=MAX_K)) -> dict:  # fmt: skip
        t0 = time.perf_counter()
        terms = _terms(svc, text, file, modality, item, (text_weight, file_weight, item_weight))
        total = sum(w * v for _, v, w in terms)
        norm = float(np.linalg.norm(total))
        if not norm > 1e-6:
            raise HTTPException(400, "the weighted queries cancel out")
        vec, kinds = total / norm, _kinds(modalities)
        where = f"label = {quote(label)}" if label else None
        if group:
            groups = kinds or [k for k in KINDS if svc.store.count(f"modality = {quote(k)}")]
            hits = [h for g in groups for h in svc.store.search(vec, k, [g], where)]
        else:
            hits = svc.store.search(vec, k, kinds, where)
        query = [{"kind": kind, "weight": w} for kind, _, w in terms]
        return {
            "query": query,
            "results": [_hit_json(h) for h in hits],
            "ms": (time.perf_counter() - t0) * 1e3,
        }

    _item_route(app, svc, auth)


def _item_route(app: FastAPI, svc: Service, auth: list) -> None:
    @lru_cache(maxsize=512)
    def preview(id: str, sha: str, kind: str, path: str) -> bytes:  # keyed by content hash: edits invalidate
        return thumbnail(kind, Path(path), svc.model.config)

    @app.get(
        "/items/{id}", dependencies=auth, summary="A stored item's file, or its preview PNG with thumb=true"
    )
    def items(id: str, thumb: bool = Query(False)) -> Response:
        row = svc.store.get(id)
        if row is None:
            raise HTTPException(404, f"no item {id!r}")
        if row["modality"] == "text" and (thumb or "#" in row["path"]):
            return PlainTextResponse(row["text"])
        path = Path(row["path"])
        if not path.is_file():
            raise HTTPException(404, f"the file of item {id} no longer exists")
        if not thumb:
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return FileResponse(path, media_type=media)
        try:
            png = preview(id, row["sha256"], row["modality"], str(path))
        except Exception as e:  # an undecodable file has no preview; say why
            raise HTTPException(422, f"no preview for item {id}: {e}") from e
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
