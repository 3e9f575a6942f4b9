"""Throwaway ASGI/RSGI apps for measuring server stacks and for the "instant" KMS peer.

Not part of Strongroom. Used by ``kms_bench.py`` and ``stack_bench.py``:

* ``app``       — ASGI hello-world: any request gets ``200 hello`` (the body, if any, is read
                  first, as a real handler would).
* ``kms_instant`` — ASGI app that answers every request with a canned, valid KMS
                  ``EncryptResponse`` (body from the ``INSTANT_BODY`` environment variable,
                  or a built-in one), instantly. boto3 parses it like a real reply.
* ``rsgi_app``  — the same hello-world on granian's native RSGI interface (for comparison).

Run e.g. ``cd bench && python -m uvicorn hello_asgi:app --loop uvloop --http httptools``
or ``cd bench && granian --interface asgi hello_asgi:app``.
"""

from __future__ import annotations

import os
from typing import Any

_HELLO = b"hello"
_HELLO_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"5")]

_DEFAULT_BODY = (
    b'{"CiphertextBlob":"AQEAAHjM2W1bZ0BqSdqC0cpHqYAWAAAAdTByBgkqhkiG9w0BBwagZTBjAgEAMF4GCSqGSIb3'
    b'DQEHATAeBglghkgBZQMEAS4wEQQM3T7m0Y2gu4i9FFWsAgEQgDEP7j1mAnpDMh0XDUNyt1x3w0K7r6iYwA==",'
    b'"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",'
    b'"EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}'
)
_KMS_BODY = os.environ.get("INSTANT_BODY", "").encode() or _DEFAULT_BODY
_KMS_HEADERS = [
    (b"content-type", b"application/x-amz-json-1.1"),
    (b"content-length", str(len(_KMS_BODY)).encode()),
    (b"x-amzn-requestid", b"00000000-0000-0000-0000-000000000000"),
]


async def _drain(receive: Any) -> None:
    while True:
        message = await receive()
        if not message.get("more_body", False):
            return


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _drain(receive)
    await send({"type": "http.response.start", "status": 200, "headers": _HELLO_HEADERS})
    await send({"type": "http.response.body", "body": _HELLO})


async def kms_instant(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _drain(receive)
    await send({"type": "http.response.start", "status": 200, "headers": _KMS_HEADERS})
    await send({"type": "http.response.body", "body": _KMS_BODY})


async def rsgi_app(scope: Any, protocol: Any) -> None:
    if scope.proto == "http":
        await protocol()  # the body
        protocol.response_bytes(200, [("content-type", "text/plain")], _HELLO)
