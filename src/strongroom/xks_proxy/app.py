"""The proxy's ASGI app: routing, SigV4, the four operations, and its own request log.

Routes (``<prefix>`` is a configured URI prefix, possibly empty):
``POST <prefix>/kms/xks/v1/keys/{keyId}/metadata|encrypt|decrypt`` and
``POST <prefix>/kms/xks/v1/health``. A path that is none of these, or whose prefix is not
configured, is InvalidUriPathException (404); another method on a valid path is 405. Then
the SigV4 check of the prefix's credential sets, then the body, then the token.

The request log has one JSON line per request: time, URI prefix, operation, key id, the
caller's access key id, the KMS request id, operation and principal from requestMetadata,
status, errorName and duration. It never holds plaintext, ciphertext, AAD or secrets.
"""

from __future__ import annotations

import binascii
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from strongroom.auth.sigv4 import HttpRequest
from strongroom.xks_proxy import requests as rq
from strongroom.xks_proxy.auth import Authenticator
from strongroom.xks_proxy.errors import (
    InternalException,
    InvalidUriPathException,
    UnsupportedOperationException,
    XksError,
)
from strongroom.xks_proxy.keys import Sealed, TokenKeys, gcm_aad, integrity_value

API_ROOT = "/kms/xks/v1/"
OPERATIONS = {
    "metadata": "GetKeyMetadata",
    "encrypt": "Encrypt",
    "decrypt": "Decrypt",
}
VENDOR = "Strongroom"
_log = logging.getLogger("strongroom.xks_proxy")


@dataclass(frozen=True)
class Route:
    prefix: str
    operation: str  # GetKeyMetadata, Encrypt, Decrypt, GetHealthStatus
    key_id: str | None


def route(path: str) -> Route:
    """The route of a request path; InvalidUriPathException when it is not an XKS path."""
    at = path.find(API_ROOT)
    if at < 0:
        raise InvalidUriPathException(f"{path!r} is not an XKS Proxy API path")
    prefix, rest = path[:at], path[at + len(API_ROOT) :]
    if rest == "health":
        return Route(prefix, "GetHealthStatus", None)
    parts = rest.split("/")
    if len(parts) == 3 and parts[0] == "keys" and parts[2] in OPERATIONS:
        return Route(prefix, OPERATIONS[parts[2]], parts[1])
    raise InvalidUriPathException(f"{path!r} is not an XKS Proxy API path")


class RequestLog:
    """One JSON line per request to ``stream`` (a file the proxy owns, or stderr), written
    before the request is answered: to a file with one ``write`` of the line (O_APPEND, no
    buffer to lose), to another stream with a write and a flush."""

    def __init__(self, stream: TextIO, fd: int | None = None) -> None:
        self._stream = stream
        self._fd = fd
        self._lock = threading.Lock()

    @classmethod
    def to_file(cls, path: Path) -> RequestLog:
        """Append to ``path`` (created mode 0600: it names callers and keys)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return cls(os.fdopen(fd, "a", encoding="utf-8", buffering=1), fd)

    def write(self, entry: Mapping[str, Any]) -> None:
        try:
            line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # a lone surrogate from a request (orjson writes only UTF-8)
            line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        if self._fd is not None:
            with self._lock:
                view = memoryview(line)
                while view:  # a regular file takes it whole; a pipe may not
                    view = view[os.write(self._fd, view) :]
            return
        with self._lock:
            self._stream.write(line.decode())
            self._stream.flush()


@dataclass
class ProxyConfig:
    """What the app serves: the authenticators per URI prefix, the token's keys, the log."""

    prefixes: dict[str, Authenticator]
    keys: TokenKeys
    log: RequestLog
    version: str = "unknown"
    extra: dict[str, Any] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


class XksProxyApp:
    """The ASGI application."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._second = (0, "")  # the last second _now formatted, and its text

    def _now(self) -> str:
        """The time as ``datetime.now(UTC).isoformat(timespec="milliseconds")`` gives it,
        the part up to the second formatted once a second."""
        now = time.time()
        second = int(now)
        if self._second[0] != second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, stamp)
        return f"{self._second[1]}.{int((now - second) * 1000):03d}+00:00"

    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        started = time.monotonic()
        entry: dict[str, Any] = {
            "time": self._now(),
            "method": scope["method"],
            "source": (scope.get("client") or [None])[0],
        }
        status, body, headers = await self._handle(scope, receive, entry)
        entry["status"] = status
        entry["ms"] = round((time.monotonic() - started) * 1000, 2)
        try:
            self.config.log.write(entry)
        except OSError:
            _log.exception("xks-proxy: the request log could not be written")
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _handle(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        entry: dict[str, Any],
    ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else str(raw_path)
        try:
            found = route(path)
            entry.update(uriPrefix=found.prefix, operation=found.operation, keyId=found.key_id)
            authenticator = self.config.prefixes.get(found.prefix)
            if authenticator is None:
                raise InvalidUriPathException(f"URI prefix {found.prefix!r} is not configured")
            if scope["method"] != "POST":
                entry["errorName"] = "MethodNotAllowed"
                return (
                    405,
                    {"errorName": "MethodNotAllowed", "errorMessage": "use POST"},
                    [(b"allow", b"POST")],
                )
            body = await _read_body(receive)
            request = HttpRequest(
                method="POST",
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=[
                    (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
                ],
                body=body,
            )
            entry["caller"] = authenticator.check(request)
            return 200, self._operate(found, body, entry), []
        except XksError as e:
            entry["errorName"] = e.name
            return e.status, e.body(), []
        except Exception:  # noqa: BLE001 - any bug answers the spec's InternalException
            _log.exception("xks-proxy: internal error")
            error = InternalException("internal error")
            entry["errorName"] = error.name
            return error.status, error.body(), []

    def _operate(self, found: Route, body: bytes, entry: dict[str, Any]) -> dict[str, Any]:
        # The token is called on the event loop itself: its calls are serialised by the
        # process-wide PKCS#11 lock anyway, and a SoftHSM2 call (~40 µs) costs less than
        # handing it to a worker thread and back (~100 µs of CPU per request, measured).
        keys = self.config.keys
        if found.operation == "GetHealthStatus":
            metadata = rq.parse_health(body)
            _note(entry, metadata)
            health = keys.health()
            return {
                "xksProxyFleetSize": 1,
                "xksProxyVendor": VENDOR,
                "xksProxyModel": f"Strongroom XKS Proxy {self.config.version}",
                "ekmVendor": health.vendor,
                "ekmFleetDetails": [
                    {"id": health.serial, "model": health.model, "healthStatus": health.status}
                ],
            }
        assert found.key_id is not None
        key_id = rq.check_key_id(found.key_id)
        if found.operation == "GetKeyMetadata":
            metadata = rq.parse_metadata(body)
            _note(entry, metadata)
            usage = keys.usage(key_id)
            return {"keySpec": "AES_256", "keyUsage": usage, "keyStatus": keys.status(key_id)}
        if found.operation == "Encrypt":
            encrypt = rq.parse_encrypt(body)
            _note(entry, encrypt.metadata)
            aad = gcm_aad(encrypt.aad, None)
            sealed = keys.encrypt(
                key_id, encrypt.plaintext, aad, decryptable=encrypt.cdiv_algorithm is not None
            )
            answer = {
                "ciphertext": _b64(sealed.ciphertext),
                "initializationVector": _b64(sealed.iv),
                "authenticationTag": _b64(sealed.tag),
            }
            if encrypt.cdiv_algorithm is not None:
                answer["ciphertextDataIntegrityValue"] = _b64(
                    integrity_value(encrypt.aad, None, sealed.iv, sealed.ciphertext, sealed.tag)
                )
            return answer
        decrypt = rq.parse_decrypt(body)
        _note(entry, decrypt.metadata)
        aad = gcm_aad(decrypt.aad, decrypt.ciphertext_metadata)
        sealed_in = Sealed(decrypt.ciphertext, decrypt.iv, decrypt.tag)
        plaintext = keys.decrypt(key_id, sealed_in, aad)
        return {"plaintext": _b64(plaintext)}


def _note(entry: dict[str, Any], metadata: rq.RequestMetadata) -> None:
    entry.update(
        kmsRequestId=metadata.kms_request_id,
        kmsOperation=metadata.kms_operation,
        awsPrincipalArn=metadata.aws_principal_arn,
        kmsKeyArn=metadata.kms_key_arn,
    )


async def _read_body(receive: Callable[[], Awaitable[dict[str, Any]]]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > rq.MAX_BODY_BYTES:
            raise UnsupportedOperationException(
                f"request body is longer than {rq.MAX_BODY_BYTES} bytes"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
