"""The access log: one line per API request on the ``strongroom.access`` logger, off unless
the ``access_log`` setting (``--access-log``) or ``--log-level debug`` turns it on.

A line names the client's address and port, the operation as an IAM action
(``kms:Encrypt``, ``sts:AssumeRole``), the HTTP status, the error code (``-`` for none), the
time from the request's arrival to its reply, and the request id::

    client=127.0.0.1:51532 operation=kms:Encrypt status=200 error=- duration_ms=1.2 request_id=...

and nothing of what the request or the reply carries: no key material, plaintext,
ciphertext, encryption context or credentials (those are in the audit trail, scrubbed).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from strongroom.server.settings import Settings

LOGGER = "strongroom.access"
_log = logging.getLogger(LOGGER)


def enable_access_log(settings: Settings) -> bool:
    """Whether ``settings`` ask for the access log; when they do, its lines pass at any
    log level (``--access-log --log-level warning`` still logs every request)."""
    on = settings.access_log or settings.log_level.lower() == "debug"
    if on:
        _log.setLevel(logging.INFO)
    return on


def log_request(
    client: Any,
    service: str,
    operation: str,
    status: int,
    error_code: str | None,
    started: float,
    request_id: str,
) -> None:
    """Log one request that arrived at ``time.perf_counter()`` ``started``; ``client`` is
    the ASGI scope's (host, port) or None."""
    _log.info(
        "client=%s operation=%s:%s status=%d error=%s duration_ms=%.1f request_id=%s",
        "-" if not client else f"{client[0]}:{client[1]}",
        service,
        _token(operation),
        status,
        error_code or "-",
        (time.perf_counter() - started) * 1000,
        request_id,
    )


def _token(text: str) -> str:
    """``text`` as one token of the line: as it is when it is a plain name, else quoted
    and escaped (an STS Action comes from the body: a newline there must not start a
    line of its own)."""
    if not text:
        return "-"
    return text if text.isalnum() and text.isascii() else json.dumps(text[:100])
