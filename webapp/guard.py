"""ASGI wrapper around the whole DermaScan app: what must hold for every response.

Litestar's own middleware runs per route, after routing, so a 404, a 405 or a body
that is too large would pass it by. This wrapper sits in front of routing instead:
- the security headers go on every response, errors and static files included;
- HEAD is answered for every GET route, as the GET without its body (RFC 9110 §9.3.2);
- a request with both ``Content-Length`` and ``Transfer-Encoding`` is refused with 400
  and the connection closed (RFC 9112 §6.3: the two framings disagree, which is how
  request smuggling between a proxy and a server works).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["HSTS", "SECURITY_HEADERS", "guard", "nginx_snippet"]

ASGIApp = Callable[[Any, Callable, Callable], Awaitable[None]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
}
# nginx's own, on HTTPS (browsers ignore it on plain HTTP)
HSTS = ("Strict-Transport-Security", "max-age=63072000")


def nginx_snippet() -> str:
    """``deploy/nginx/security-headers.conf``: nginx sends these headers (and HSTS) on every
    response, once each: the app's own copies are hidden, so pages, errors, the files nginx
    serves and the 400s of uvicorn's parser, which never reach the app, all carry them. A
    test keeps the file equal to this; regenerate it with ``python -c "from webapp.guard
    import nginx_snippet; print(nginx_snippet(), end='')" >
    deploy/nginx/security-headers.conf``."""
    lines = ["# Generated from webapp.guard.SECURITY_HEADERS (see nginx_snippet); do not edit."]
    lines += [f"proxy_hide_header {name};" for name in SECURITY_HEADERS]
    for name, value in [*SECURITY_HEADERS.items(), HSTS]:
        lines.append(f'add_header {name} "{value}" always;')
    return "\n".join(lines) + "\n"


_ENCODED = [
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in SECURITY_HEADERS.items()
]


def _with_security_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    return list(headers) + [(k, v) for k, v in _ENCODED if k not in present]


def _conflicting_framing(headers: list[tuple[bytes, bytes]]) -> bool:
    names = {name.lower() for name, _ in headers}
    return b"content-length" in names and b"transfer-encoding" in names


NOTHING_HERE = "There is nothing at this address. The API lives under /api/."


def _unusable_path(path: str) -> bool:
    """A path with a NUL or another control character: no route or file has one."""
    return any(ord(c) < 32 or ord(c) == 127 for c in path)


async def _answer(send: Callable, status: int, detail: str, close: bool = False) -> None:
    """A JSON error answered here, before routing, with the security headers."""
    body = json.dumps({"status_code": status, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ] + ([(b"connection", b"close")] if close else [])
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _with_security_headers(headers),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse_framing(send: Callable) -> None:
    detail = "The request has both Content-Length and Transfer-Encoding; send one."
    await _answer(send, 400, detail, close=True)


def guard(app: ASGIApp) -> ASGIApp:
    """``app`` with the rules above applied to every HTTP request."""

    async def guarded(scope: MutableMapping[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if _conflicting_framing(scope["headers"]):
            await _refuse_framing(send)
            return
        if _unusable_path(scope["path"]):  # e.g. /static/app.js%00.png: 404, never a 500
            await _answer(send, 404, NOTHING_HERE)
            return
        head = scope["method"] == "HEAD"
        if head:
            # in place: the scope is this request's own, and webapp.metrics reads what the
            # router writes into it (the matched route)
            scope["method"] = "GET"

        async def send_guarded(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_security_headers(message["headers"])}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}  # the GET's headers, Content-Length too
            await send(message)

        await app(scope, receive, send_guarded)

    return guarded
