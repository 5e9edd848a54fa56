"""`Guard`: a pure ASGI middleware that checks each request's line and headers before any body byte is read.

In order: the `Host` header must be an allowed name (DNS rebinding: a web page at `evil.example` that resolves to
127.0.0.1 sends `Host: evil.example`); a browser request that changes state must come from the page's own origin
(`Sec-Fetch-Site`, else `Origin`, as cross-site form POSTs carry them); every path but `OPEN` needs the bearer token
when one is set (so `/openapi.json` and `/docs` too); and a body longer than `max_body` is refused with 413 from its
`Content-Length`, or while it streams in when it has none. Refusals are JSON `{"detail": ...}` like FastAPI's own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from fastapi import HTTPException

from bindkit.serve.server import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPEN = (
    "/",
    "/health",
    "/kinds",
    "/favicon.ico",
)  # and everything under /static/: the page must load before it has a token
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SAME_SITE = ("same-origin", "none")  # `none`: typed in the address bar or a bookmark


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body without `Content-Length` grows past the limit (FastAPI re-raises it)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body larger than {limit} bytes", headers={"Connection": "close"})


def host_name(host: str) -> str:
    """`localhost:8000` -> `localhost`, `[::1]:8000` -> `::1` (lower case)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: Iterable[str] | None) -> bool:
    """With `allowed=None` only loopback names pass; otherwise the listed names (`*` allows any)."""
    name = host_name(host)
    if allowed is None:
        return bool(name) and is_loopback(name)
    names = {host_name(a) for a in allowed}
    return "*" in names or name in names


def same_origin(headers: dict[str, str]) -> bool:
    """False for a request a browser marks as sent from another site (or an opaque `Origin: null`)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in SAME_SITE
    origin = headers.get("origin")
    if origin is None:
        return True  # not from a browser page (curl, httpx, the test client)
    return origin.split("://", 1)[-1].rstrip("/").lower() == headers.get("host", "").lower()


class Guard:
    """The checks of the module docstring, in front of `app`."""

    def __init__(
        self, app: Any, token: str | None, max_body: int, allowed_hosts: Iterable[str] | None = None
    ):
        self.app, self.token, self.max_body = app, token, max_body
        self.allowed = (
            list(allowed_hosts) if allowed_hosts is not None else (None if token is None else ["*"])
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            return await _reply(send, *refusal)
        return await self.app(scope, self._limited(receive), send)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, dict[str, str]] | None:
        """(status, reason, headers) when the request is refused, else None."""
        if not host_allowed(headers.get("host", ""), self.allowed):
            return 400, f"Host {headers.get('host', '')!r} is not served here", {}
        if scope["method"] in UNSAFE_METHODS and not same_origin(headers):
            return 403, "cross-origin requests are refused", {}
        path = scope["path"]
        if self.token is not None and path not in OPEN and not path.startswith("/static/"):
            auth = headers.get("authorization", "")
            scheme, _, cred = auth.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(
                cred.strip().encode(), self.token.encode()
            ):
                return 401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, f"request body larger than {self.max_body} bytes", {"Connection": "close"}
        return None

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise BodyTooLarge(self.max_body)
            return message

        return wrapped


async def _reply(send: Send, status: int, reason: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": reason}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
