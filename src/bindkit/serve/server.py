"""`serve(...)`: run the service with uvicorn. Binds 127.0.0.1 unless told otherwise; any other address needs a token."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bindkit.model import ImageBind

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to expose the service beyond this machine without a bearer token."""
    if not is_loopback(host) and not token:
        raise ValueError(
            f"binding to {host} exposes the service to other machines: pass a token (bindkit serve --token ...) "
            "that clients send as 'Authorization: Bearer <token>'"
        )


def build_app(model: ImageBind | str | Path | None = None, store_dir: str | Path | None = None, token: str | None = None,
              table: str | None = None, data: list[str | Path] | None = None, demo_run: str | Path | None = None,
              progress: bool = True, backend: str = "torch", **app_kwargs: Any) -> Any:  # fmt: skip
    """The app `serve` runs: embeds `data` (folders or manifests) into the store first, only new or changed files.

    Without `model`, the demo run `demo_run` (default: the latest) gives the model, the store and its test split.
    `backend` runs the model on OpenVINO or ONNX Runtime (`bindkit.load_model`).
    """
    from bindkit.resolve import load_for
    from bindkit.serve.app import create_app
    from bindkit.store.embed import embed_paths

    if model is None:
        from bindkit.serve.demo import demo_paths

        model, default_store, demo_data = demo_paths(demo_run)
        store_dir = store_dir or default_store
        data = data or [*demo_data]
    if store_dir is None:
        raise ValueError("give store_dir (a folder or a LanceDB URI) with model")
    net = load_for(model, backend)
    if data:
        print(embed_paths(list(data), store_dir, net, table=table, progress=progress).summary())
    return create_app(net, store_dir, token=token, table=table, **app_kwargs)


def serve(host: str = "127.0.0.1", port: int = 8000, model: ImageBind | str | Path | None = None,
          store_dir: str | Path | None = None, token: str | None = None, table: str | None = None,
          data: list[str | Path] | None = None, demo_run: str | Path | None = None, log_level: str = "info",
          backend: str = "torch", **app_kwargs: Any) -> None:  # fmt: skip
    """Serve a model and store over HTTP (default: the latest demo run, its test split embedded on first start)."""
    import uvicorn

    check_binding(host, token)  # before anything is loaded
    app = build_app(model, store_dir, token, table, data, demo_run, backend=backend, **app_kwargs)
    print(f"bindkit: serving on http://{host}:{port}/" + (" (bearer token required)" if token else ""))
    uvicorn.run(app, host=host, port=port, log_level=log_level)
