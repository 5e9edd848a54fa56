"""The HTTP service: `create_app(model, store_dir)` -> a FastAPI app with `/embed`, `/search`, `/items/{id}`,
`/health`, `/kinds`, the OpenAPI schema (`/openapi.json`, `/docs`) and the search page at `/`.

`guard.Guard` checks every request's headers first: the `Host` allow-list, same-origin browser POSTs, the bearer
token (with a `token`, everything but `/health`, `/kinds`, the page and its static files asks for `Authorization:
Bearer <token>`; the page reads the token from its URL fragment: `http://host:port/#token=...`) and the body size.
Uploads go through `uploads.py` (size, type, leading bytes) and `limits.py` (what the header says they decode to);
any failure to read one is a 4xx naming the file as sent. Forward passes are shared by concurrent requests
(`batch.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import mimetypes
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from bindkit.modalities import spec as modality_spec
from bindkit.modalities import specs as modality_specs
from bindkit.model import ImageBind
from bindkit.resolve import load_for
from bindkit.serve.batch import Batcher, Busy
from bindkit.serve.guard import Guard
from bindkit.serve.heatmap import add_heatmap_route
from bindkit.serve.limits import Limits, check_decoded
from bindkit.serve.thumbs import thumbnail
from bindkit.serve.uploads import MAX_UPLOAD_BYTES, UploadError, read_limited, saved_upload
from bindkit.store.detect import DetectError, detect_modality, encoder_of, kinds, normalize_kind
from bindkit.store.inputs import load_inputs
from bindkit.store.search import QueryError, embed_term
from bindkit.store.store import Hit, Store, quote

if TYPE_CHECKING:
    from bindkit.runtime.backends import RuntimeModel

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


def _has_thumb(kind: str) -> bool:
    """Whether items of a kind have a preview (False for kinds no longer registered)."""
    return kind in kinds() and modality_spec(kind).thumbnail is not None


def kind_table(model: Any) -> list[dict[str, Any]]:
    """The kinds the page offers: name, encoder, file extensions, preview or not, and whether this model embeds it."""
    return [dict(name=s.name, encoder=s.encoder, extensions=list(s.detect_extensions), thumbnail=s.thumbnail is not None,
                 text=s.text_items, embeds=s.encoder in model.config.encoders) for s in modality_specs()]  # fmt: skip


def _hit_json(h: Hit) -> dict[str, Any]:
    has_thumb = _has_thumb(h.modality)
    return dict(id=h.id, name=Path(h.path.split("#")[0]).name, modality=h.modality, score=round(h.score, 5),
                label=h.label, meta=h.meta, text=h.text[:300], url=f"/items/{h.id}",
                thumb=f"/items/{h.id}?thumb=true" if has_thumb else None)  # fmt: skip


class Service:
    """The loaded model and store, the service's limits and the batcher that runs the model."""

    def __init__(self, model: ImageBind | RuntimeModel | str | Path, store_dir: str | Path, table: str | None, limits: Limits):
        self.model = load_for(model)
        # refresh_s: rows written by a concurrent `bindkit embed` show up within seconds
        self.store = Store.for_model(store_dir, self.model, table, refresh_s=5.0)
        self.limits = limits
        self.batcher = Batcher(self.model, limits.max_batch, limits.max_queue, limits.request_timeout_s)

    def upload_vector(self, upload: UploadFile, modality: str | None) -> tuple[str, np.ndarray]:
        """Check, store temporarily, detect and embed one uploaded file -> (kind, vector)."""
        name = Path(upload.filename or "upload").name
        with _upload_errors(name):
            data = read_limited(upload.file, self.limits.max_upload_bytes)
            with saved_upload(upload.filename, data) as path:
                check_decoded(path, name, self.limits)
                kind = normalize_kind(modality) if modality and modality != "auto" else detect_modality(path)
                return kind, self.item_vector(kind, path)

    def text_vector(self, text: str) -> np.ndarray:
        if len(text) > MAX_TEXT:
            raise QueryError(f"text query longer than {MAX_TEXT} characters")
        return self.item_vector("text", text)

    def item_vector(self, kind: str, item: Any) -> np.ndarray:
        """Load one item in this thread, embed it in the batcher's next forward pass."""
        name = encoder_of(kind)
        enc = self.model.config.encoders.get(name)
        if enc is None:
            raise QueryError(f"the model has no {name} encoder")
        res = load_inputs(kind, [item], enc)
        if res.skipped:
            raise QueryError(res.skipped[0].reason)
        vec = self.batcher.encode(name, res.tensor)
        if not np.isfinite(vec).all():  # e.g. NaN samples: the JSON answer and the scores would be NaN
            raise QueryError("the content gives no finite embedding (NaN or infinite values)")
        return vec


TEMP_FOLDER = re.compile(r"\S*bindkit-upload-[^/\s]*/")  # uploads.saved_upload's folder, up to the file name


@contextmanager
def _upload_errors(name: str) -> Iterator[None]:
    """Any failure to read an upload -> `UploadError` naming the file as sent, never the temporary path."""

    def named(e: BaseException) -> str:
        msg = TEMP_FOLDER.sub("", str(e))
        return msg if name in msg else f"{name}: {msg}"

    try:
        yield
    except Busy:
        raise
    except UploadError as e:
        raise UploadError(named(e), e.status) from e
    except QueryError as e:  # the loader's reason: a file of an accepted type whose content is unreadable
        raise UploadError(named(e), 422) from e
    except (DetectError, ValueError) as e:  # e.g. ambiguous: the request needs a `modality`
        raise UploadError(named(e)) from e
    except MemoryError as e:
        raise UploadError(f"{name}: too large to decode", 413) from e
    except Exception as e:  # noqa: BLE001 - a file no loader can read is the sender's error, not the service's
        raise UploadError(
            f"{name}: could not be read ({type(e).__name__}: {TEMP_FOLDER.sub('', str(e))})", 422
        ) from e


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
        terms.append(("id", _errors(lambda: embed_term(None, svc.store, "id", item)), weights[2]))
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
    except Busy as e:
        raise HTTPException(503, str(e), headers={"Retry-After": "1"}) from e


def _finite(**weights: float) -> tuple[float, ...]:
    """The weights, refusing inf and nan (they turn every score into nan)."""
    for key, w in weights.items():
        if not math.isfinite(w):
            raise HTTPException(400, f"{key} must be a finite number, got {w}")
    return tuple(weights.values())


def create_app(model: ImageBind | RuntimeModel | str | Path, store_dir: str | Path, token: str | None = None, table: str | None = None,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, limits: Limits | None = None,
               allowed_hosts: list[str] | None = None) -> FastAPI:  # fmt: skip
    """The service for a model (a folder from `save_model`, or a loaded `ImageBind`) and a store folder or URI.

    `allowed_hosts`: the `Host` names served (default: loopback names without a token, any name with one).
    """
    limits = limits or dataclasses.replace(Limits(), max_upload_bytes=max_upload_bytes)
    svc = Service(model, store_dir, table, limits)
    app = FastAPI(
        title="bindkit", version="0.1.0", description="Search one embedding space across six modalities."
    )
    app.state.service = svc
    auth = [Depends(_auth(token))]
    _routes(app, svc, auth)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # the form fields around a file take a few kB; 64 kB of slack keeps the limit the file's own
    app.add_middleware(
        Guard, token=token, max_body=limits.max_upload_bytes + 65536, allowed_hosts=allowed_hosts
    )
    return app


def _routes(app: FastAPI, svc: Service, auth: list) -> None:
    """Every route of the service: the page and status, embed, search, items and heatmaps."""
    _info_routes(app, svc)
    _embed_route(app, svc, auth)
    _search_route(app, svc, auth)
    _item_route(app, svc, auth)
    add_heatmap_route(app, svc, auth, _terms, _finite, checked_file)


def _info_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/health", summary="Service status and what the store holds")
    def health() -> dict[str, Any]:
        counts = {k: svc.store.count(f"modality = {quote(k)}") for k in kinds()}
        return dict(status="ok", model=svc.model.config.name, table=svc.store.name, items=sum(counts.values()),
                    kinds={k: n for k, n in counts.items() if n}, indexed=svc.store.has_index(),
                    modalities=list(svc.model.config.encoders))  # fmt: skip

    @app.get("/kinds", summary="The kinds of item the service knows (the page builds its menus from these)")
    def kind_list() -> list[dict[str, Any]]:
        return kind_table(svc.model)


def _embed_route(app: FastAPI, svc: Service, auth: list) -> None:
    @app.post("/embed", dependencies=auth, summary="Embed a text or an uploaded file")
    def embed(text: str | None = Form(None), file: UploadFile | None = File(None),
              modality: str | None = Form(None, description="the file's kind; detected when omitted")) -> dict:  # fmt: skip
        if (text is None) == (file is None):
            raise HTTPException(400, "give exactly one of `text` or `file`")
        kind, vec = _errors(
            lambda: svc.upload_vector(file, modality) if file else ("text", svc.text_vector(text or ""))
        )
        return {"modality": kind, "dim": int(vec.shape[0]), "vector": vec.tolist()}


def _search_route(app: FastAPI, svc: Service, auth: list) -> None:
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
        weights = _finite(text_weight=text_weight, file_weight=file_weight, item_weight=item_weight)
        terms = _terms(svc, text, file, modality, item, weights)  # type: ignore[arg-type]
        total: np.ndarray = sum(w * v for _, v, w in terms)  # type: ignore[assignment]
        norm = float(np.linalg.norm(total))
        if not norm > 1e-6:
            raise HTTPException(400, "the weighted queries cancel out")
        assert isinstance(total, np.ndarray)  # at least one term, or the norm check above failed
        hits = _nearest(svc, total / norm, k, _kinds(modalities), label, group)
        query = [{"kind": kind, "weight": w} for kind, _, w in terms]
        return {
            "query": query,
            "results": [_hit_json(h) for h in hits],
            "ms": (time.perf_counter() - t0) * 1e3,
        }


def _nearest(svc: Service, vec: np.ndarray, k: int, wanted: list[str] | None, label: str | None,
             group: bool) -> list:  # fmt: skip
    """The store's nearest items to `vec`: k overall, or k per kind with `group`; only `label`'s items if given."""
    where = f"label = {quote(label)}" if label else None
    if not group:
        return svc.store.search(vec, k, wanted, where)
    groups = wanted or [k for k in kinds() if svc.store.count(f"modality = {quote(k)}")]
    return [h for g in groups for h in svc.store.search(vec, k, [g], where)]


@lru_cache(maxsize=4096)
def _sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:  # keyed by what a change would alter
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def checked_file(row: dict[str, Any]) -> Path:
    """The row's file while it is still what was embedded (same size, and same mtime or same sha256), else 410."""
    path, id = Path(row["path"]), row["id"]
    try:
        st = path.stat()
    except OSError as e:
        raise HTTPException(410, f"the file of item {id} no longer exists") from e
    if not stat.S_ISREG(st.st_mode) or st.st_size != row["size"]:
        raise HTTPException(410, f"the file of item {id} changed since it was embedded")
    if (
        st.st_mtime != row["mtime"]
        and _sha256(str(path), st.st_size, st.st_mtime_ns, st.st_ino) != row["sha256"]
    ):
        raise HTTPException(410, f"the file of item {id} changed since it was embedded")
    return path


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
        text_item = row["modality"] in kinds() and modality_spec(row["modality"]).text_items
        if text_item and (thumb or "#" in row["path"]):
            return PlainTextResponse(row["text"])
        path = checked_file(row)
        if not thumb:
            media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return FileResponse(path, media_type=media)
        try:
            png = preview(id, row["sha256"], row["modality"], str(path))
        except Exception as e:  # an undecodable file has no preview; say why
            raise HTTPException(422, f"no preview for item {id}: {e}") from e
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
