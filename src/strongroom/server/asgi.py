"""The ASGI side of the server: the callable's types, reading a request body, sending a reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from strongroom.domain.errors import SerializationException

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

MAX_BODY = 1 << 20


async def read_body(receive: Receive) -> bytes:
    """The request body; SerializationException when it is larger than MAX_BODY bytes."""
    message = await receive()
    if not message.get("more_body", False):  # the usual case: one message
        body: bytes = message.get("body", b"")
        if len(body) > MAX_BODY:
            raise SerializationException(f"The request body is larger than {MAX_BODY} bytes.")
        return body
    chunks: list[bytes] = [message.get("body", b"")]
    size = len(chunks[0])
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise SerializationException(f"The request body is larger than {MAX_BODY} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def reply(send: Send, status: int, body: bytes, content_type: bytes, extra: Headers) -> None:
    """Send a whole reply: content type and length first, then the ``extra`` headers."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", b"%d" % len(body)),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
