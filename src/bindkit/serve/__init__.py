"""The HTTP service and search page: `create_app(model, store_dir)` and `serve(host, port, ...)`."""

from bindkit.serve.app import create_app
from bindkit.serve.server import serve

__all__ = ["create_app", "serve"]
