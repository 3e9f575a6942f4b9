"""The console's HTTP side: a browser request read from ASGI, replies, cookies, assets."""

from __future__ import annotations

import importlib.resources
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

PREFIX = "/console"
MAX_FORM = 256 * 1024

STATIC = {
    "console.css": b"text/css; charset=utf-8",
    "console.js": b"text/javascript; charset=utf-8",
}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


class Reply(Exception):
    """Stops a route with this reply (a redirect, a refusal)."""

    def __init__(self, status: int, body: bytes = b"", headers: Headers | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or []


def redirect(location: str, headers: Headers | None = None) -> Reply:
    return Reply(303, b"", [(b"location", location.encode()), *(headers or [])])


class Request:
    """One browser request to the console."""

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope["path"][len(PREFIX) :] or "/"
        self.headers: dict[str, str] = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self.query = {
            k: v[0]
            for k, v in urllib.parse.parse_qs(
                scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
            ).items()
        }
        self.form: dict[str, list[str]] = (
            urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if self.method == "POST"
            else {}
        )
        self.cookies = parse_cookies(self.headers.get("cookie", ""))
        self.secure = scope.get("scheme") == "https"
        client = scope.get("client")
        self.client: tuple[str, int] | None = (client[0], client[1]) if client else None
        self.address = self.client[0] if self.client else "127.0.0.1"

    def same_origin(self) -> bool:
        """False when the browser says the request comes from another site (Origin or
        Sec-Fetch-Site); a browser that says nothing is judged by the CSRF token alone."""
        origin = self.headers.get("origin")
        if origin and origin != "null":
            host = urllib.parse.urlsplit(origin).netloc
            if host != self.headers.get("host", ""):
                return False
        elif origin == "null":
            return False
        return self.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def parse_cookies(header: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for piece in header.split(";"):
        name, _, value = piece.strip().partition("=")
        if name and name not in found:
            found[name] = value
    return found


def static_asset(name: str) -> tuple[int, bytes, Headers]:
    content_type = STATIC.get(name)
    if content_type is None:
        raise Reply(404, b"Not found", [(b"content-type", b"text/plain")])
    data = importlib.resources.files("strongroom.console").joinpath("static", name).read_bytes()
    return 200, data, [(b"content-type", content_type)]


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM:
            raise Reply(413, b"The form is too large.", [(b"content-type", b"text/plain")])
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
