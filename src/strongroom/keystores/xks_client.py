"""The KMS side's client of an XKS proxy (XKS Proxy API v1.0): SigV4-signed JSON over one
keep-alive connection pool per proxy, with a total deadline per call.

Every method raises only XksError, whose ``failure`` says what went wrong (the transport, the
shape of the answer, or the proxy's own ``errorName``); keystores.xks_errors turns it into
the AWS exception each KMS operation returns. Details are for the log: they never hold a
secret, a plaintext or a ciphertext.

The transport is keystores.xks_transport (connections kept alive, llhttp parsing): a call
made on the event loop (a handler the request pipeline runs through
``keystores.loop_bridge``) waits for its answer there, on the loop's own connections
(``AsyncHttpPool``), and the loop serves other requests meanwhile; a call made on any other
thread blocks on ``HttpPool``'s. The hot path
is Encrypt (every Encrypt, GenerateDataKey and ReEncrypt of a key in an external key store
makes one call), so the constant parts of each request are built once:
the URL and canonical URI per key id and operation, the credential scope and signing key per
UTC day, the ``x-amz-date`` per second. A call hashes its body once and runs one HMAC.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import http.client
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from strongroom.auth import sigv4
from strongroom.domain.errors import InvalidCiphertextException
from strongroom.keystores.loop_bridge import on_bridge, wait_for
from strongroom.keystores.xks_transport import AsyncHttpPool, HttpPool, PoolClosed

__all__ = [
    "CDIV_ALGORITHM",
    "ENCRYPTION_ALGORITHM",
    "SERVICE",
    "Failure",
    "Health",
    "KeyMetadata",
    "Wrapped",
    "XksCall",
    "XksClient",
    "XksEndpoint",
    "XksError",
]

SERVICE = "kms-xks-proxy"
ENCRYPTION_ALGORITHM = "AES_GCM"
CDIV_ALGORITHM = "SHA_256"
IV_LENGTHS = (12, 16)
TAG_LENGTH = 16
MAX_METADATA_BYTES = 20
HEALTH_STATUSES = frozenset({"ACTIVE", "DEGRADED", "UNAVAILABLE"})
KEY_STATUSES = frozenset({"ENABLED", "DISABLED"})
MAX_FLEET_DETAILS = 10
MAX_KEY_USAGES = 10


@dataclass(frozen=True, slots=True)
class XksEndpoint:
    """Where a proxy is and how to sign for it."""

    uri_endpoint: str  # "https://host[:port]" (or "http://<loopback>:port" for local proxies)
    uri_path: str  # "[/<prefix>]/kms/xks/v1"
    region: str  # the key store's Region (SigV4 scope)
    access_key_id: str
    secret_access_key: str
    ca_bundle: str | None = None  # PEM file of CAs to trust for https; None = the system's

    def __repr__(self) -> str:  # never the secret
        return (
            f"XksEndpoint(uri_endpoint={self.uri_endpoint!r}, uri_path={self.uri_path!r}, "
            f"region={self.region!r}, access_key_id={self.access_key_id!r}, "
            f"ca_bundle={self.ca_bundle!r})"
        )


@dataclass(frozen=True, slots=True)
class XksCall:
    """The requestMetadata of one call."""

    kms_request_id: str
    kms_operation: str  # "CreateCustomKeyStore", "Encrypt", "ReEncrypt", "CreateKey", ...
    aws_principal_arn: str | None = None
    kms_key_arn: str | None = None


class Failure(StrEnum):
    """Why a call failed."""

    # The transport, the answer's shape, a CDIV mismatch.
    UNREACHABLE = "UNREACHABLE"
    TLS = "TLS"
    TIMED_OUT = "TIMED_OUT"
    MALFORMED = "MALFORMED"
    # The proxy's own errorName.
    VALIDATION = "VALIDATION"
    INVALID_STATE = "INVALID_STATE"
    INVALID_CIPHERTEXT = "INVALID_CIPHERTEXT"
    INVALID_KEY_USAGE = "INVALID_KEY_USAGE"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    ACCESS_DENIED = "ACCESS_DENIED"
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    INVALID_URI_PATH = "INVALID_URI_PATH"
    THROTTLING = "THROTTLING"
    UNSUPPORTED_OPERATION = "UNSUPPORTED_OPERATION"
    DEPENDENCY_TIMEOUT = "DEPENDENCY_TIMEOUT"
    INTERNAL = "INTERNAL"


# The spec's errorName of each proxy failure ("Error codes").
ERROR_NAMES: dict[str, Failure] = {
    "ValidationException": Failure.VALIDATION,
    "InvalidStateException": Failure.INVALID_STATE,
    "InvalidCiphertextException": Failure.INVALID_CIPHERTEXT,
    "InvalidKeyUsageException": Failure.INVALID_KEY_USAGE,
    "AuthenticationFailedException": Failure.AUTHENTICATION_FAILED,
    "AccessDeniedException": Failure.ACCESS_DENIED,
    "KeyNotFoundException": Failure.KEY_NOT_FOUND,
    "InvalidUriPathException": Failure.INVALID_URI_PATH,
    "ThrottlingException": Failure.THROTTLING,
    "UnsupportedOperationException": Failure.UNSUPPORTED_OPERATION,
    "DependencyTimeoutException": Failure.DEPENDENCY_TIMEOUT,
    "InternalException": Failure.INTERNAL,
}


class XksError(Exception):
    """A failed proxy call: internal, never on the wire as is (see keystores.xks_errors)."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure = failure
        self.detail = detail  # for the log: never a secret, never plaintext


@dataclass(frozen=True, slots=True)
class Health:
    """What GetHealthStatus reported."""

    statuses: tuple[str, ...]  # ekmFleetDetails[].healthStatus

    @property
    def all_unavailable(self) -> bool:
        """No external key manager can serve traffic."""
        return all(status == "UNAVAILABLE" for status in self.statuses)


@dataclass(frozen=True, slots=True)
class KeyMetadata:
    """What GetKeyMetadata reported (checked for shape, not for what CreateKey requires)."""

    key_spec: str
    key_usage: tuple[str, ...]
    key_status: str


@dataclass(frozen=True, slots=True)
class Wrapped:
    """What the proxy's encrypt returned, all of which its decrypt needs back."""

    ciphertext: bytes
    iv: bytes
    tag: bytes
    metadata: bytes | None

    def to_bytes(self) -> bytes:
        """The serialised form:

        ======  =====================================================
        1       length of the IV (12 or 16)
        n       IV
        1       length of the ciphertextMetadata (0 to 20; 0 = none)
        m       ciphertextMetadata
        16      authentication tag
        rest    ciphertext
        ======  =====================================================
        """
        metadata = self.metadata or b""
        return b"".join(
            (
                bytes((len(self.iv),)),
                self.iv,
                bytes((len(metadata),)),
                metadata,
                self.tag,
                self.ciphertext,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Wrapped:
        """The inverse of to_bytes; InvalidCiphertextException (no detail) when ``data`` is
        not one."""
        try:
            iv_length = data[0]
            if iv_length not in IV_LENGTHS:
                raise InvalidCiphertextException()
            at = 1 + iv_length
            iv = data[1:at]
            metadata_length = data[at]
            if metadata_length > MAX_METADATA_BYTES:
                raise InvalidCiphertextException()
            metadata = data[at + 1 : at + 1 + metadata_length]
            at += 1 + metadata_length
            tag = data[at : at + TAG_LENGTH]
            ciphertext = data[at + TAG_LENGTH :]
        except IndexError:
            raise InvalidCiphertextException() from None
        if len(iv) != iv_length or len(metadata) != metadata_length or len(tag) != TAG_LENGTH:
            raise InvalidCiphertextException()
        return cls(ciphertext, iv, tag, metadata or None)


# --- helpers -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _unb64(body: dict[str, Any], name: str, operation: str, *, required: bool) -> bytes | None:
    value = body.get(name)
    if value is None:
        if required:
            raise XksError(Failure.MALFORMED, f"{operation}: the answer has no {name}")
        return None
    if not isinstance(value, str):
        raise XksError(Failure.MALFORMED, f"{operation}: {name} is not a string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise XksError(Failure.MALFORMED, f"{operation}: {name} is not valid Base64") from None


def _printable(text: object, limit: int = 200) -> str:
    """A proxy's errorMessage, safe for a log line: printable ASCII, at most ``limit``."""
    if not isinstance(text, str):
        return ""
    return "".join(c for c in text[:limit] if " " <= c <= "~")


def _metadata(call: XksCall, *, principal: bool, key_arn: bool) -> dict[str, str]:
    fields = {"kmsRequestId": call.kms_request_id, "kmsOperation": call.kms_operation}
    if principal and call.aws_principal_arn is not None:
        fields["awsPrincipalArn"] = call.aws_principal_arn
    if key_arn and call.kms_key_arn is not None:
        fields["kmsKeyArn"] = call.kms_key_arn
    return fields


@dataclass(frozen=True, slots=True)
class _Target:
    """The URL of one operation (relative to the pool) and its SigV4 CanonicalURI."""

    url: str
    canonical_uri: str


# --- the client --------------------------------------------------------------------------


class XksClient:
    """A client of one proxy: thread-safe, one keep-alive connection pool, SigV4 service
    ``kms-xks-proxy``, at most ``timeout`` seconds per call (AWS KMS's XKS timeout is
    250 ms) for connecting, the TLS handshake, sending and the answer: each step gets what
    is left of the call's deadline (a server that trickles its answer a few bytes at a time
    could stretch that, one socket read at a time; a proxy that is merely slow times out)."""

    _MAX_TARGETS = 4096

    def __init__(
        self,
        endpoint: XksEndpoint,
        *,
        timeout: float = 0.25,
        pool_size: int = 64,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` gives the time the requests are signed at (seconds since the epoch).

        ValueError when ``uri_endpoint`` is not ``http(s)://host[:port]``; XksError(TLS)
        when ``ca_bundle`` cannot be read as PEM certificates."""
        parts = urlsplit(endpoint.uri_endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("uri_endpoint must be http(s)://host[:port]")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("uri_endpoint must be http(s)://host[:port] and nothing more")
        for name in ("uri_path", "region", "access_key_id"):
            value = getattr(endpoint, name)
            if not (value.isascii() and value.isprintable()) or " " in value:
                # they go into the request line and headers as they are
                raise ValueError(f"{name} must be printable ASCII without spaces")
        self._endpoint = endpoint
        self._timeout = timeout
        self._clock = clock
        host = parts.hostname
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        # The Host header as http.client would send it (the signature covers it).
        shown = f"[{host}]" if ":" in host else host
        self._host = shown if port == default_port else f"{shown}:{port}"
        context = None
        if parts.scheme == "https":
            try:  # fail now, not on every connection
                context = ssl.create_default_context(cafile=endpoint.ca_bundle)
            except (OSError, ssl.SSLError) as e:
                raise XksError(
                    Failure.TLS, f"the CA bundle {endpoint.ca_bundle!r} cannot be loaded: {e}"
                ) from None
            context.minimum_version = ssl.TLSVersion.TLSv1_2  # the spec's floor
        self._pool = HttpPool(host, port, max_idle=pool_size, ssl_context=context)
        self._loop_pool = AsyncHttpPool(host, port, max_idle=pool_size, ssl_context=context)
        self._base = endpoint.uri_path.rstrip("/")
        self._targets: dict[tuple[str, str], _Target] = {}
        self._lock = threading.Lock()
        # date, scope, HMAC keyed with the day's signing key (copied per call), credential
        self._day: tuple[str, str, hmac.HMAC, str] = ("", "", hmac.new(b"", None, "sha256"), "")
        self._second: tuple[int, str] = (-1, "")

    @property
    def endpoint(self) -> XksEndpoint:
        return self._endpoint

    def __repr__(self) -> str:
        return f"XksClient({self._endpoint!r}, timeout={self._timeout})"

    def close(self) -> None:
        """Close the pooled connections. Calls made afterwards fail (UNREACHABLE); calls in
        flight finish. A client no longer referenced needs no close: its sockets close with
        it."""
        self._pool.close()
        self._loop_pool.close()

    def __enter__(self) -> XksClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the four operations -------------------------------------------------------------

    def health(self, call: XksCall) -> Health:
        """GetHealthStatus; MALFORMED unless the answer has the spec's shape (a fleet size
        above zero, the vendor and model strings, 1 to 10 ekmFleetDetails whose
        healthStatus is ACTIVE, DEGRADED or UNAVAILABLE)."""
        body = {"requestMetadata": _metadata(call, principal=False, key_arn=False)}
        answer = self._call("health", "", body)
        size = answer.get("xksProxyFleetSize")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise XksError(Failure.MALFORMED, "health: xksProxyFleetSize is not an integer > 0")
        for name in ("xksProxyVendor", "xksProxyModel", "ekmVendor"):
            if not isinstance(answer.get(name), str):
                raise XksError(Failure.MALFORMED, f"health: {name} is not a string")
        details = answer.get("ekmFleetDetails")
        if not isinstance(details, list) or not 1 <= len(details) <= MAX_FLEET_DETAILS:
            raise XksError(
                Failure.MALFORMED, "health: ekmFleetDetails is not a list of 1 to 10 entries"
            )
        statuses: list[str] = []
        for detail in details:
            if (
                not isinstance(detail, dict)
                or not isinstance(detail.get("id"), str)
                or not isinstance(detail.get("model"), str)
                or detail.get("healthStatus") not in HEALTH_STATUSES
            ):
                raise XksError(
                    Failure.MALFORMED,
                    "health: an ekmFleetDetails entry lacks id, model or a healthStatus of "
                    "ACTIVE, DEGRADED or UNAVAILABLE",
                )
            statuses.append(detail["healthStatus"])
        return Health(tuple(statuses))

    def key_metadata(self, key_id: str, call: XksCall) -> KeyMetadata:
        """GetKeyMetadata of external key ``key_id``; MALFORMED unless keySpec is a string,
        keyUsage a list of at most 10 strings and keyStatus ENABLED or DISABLED."""
        body = {"requestMetadata": _metadata(call, principal=True, key_arn=True)}
        answer = self._call("metadata", key_id, body)
        spec, usage, status = answer.get("keySpec"), answer.get("keyUsage"), answer.get("keyStatus")
        if not isinstance(spec, str):
            raise XksError(Failure.MALFORMED, "metadata: keySpec is not a string")
        if (
            not isinstance(usage, list)
            or len(usage) > MAX_KEY_USAGES
            or not all(isinstance(u, str) for u in usage)
        ):
            raise XksError(Failure.MALFORMED, "metadata: keyUsage is not a list of <= 10 strings")
        if status not in KEY_STATUSES:
            raise XksError(Failure.MALFORMED, "metadata: keyStatus is not ENABLED or DISABLED")
        return KeyMetadata(spec, tuple(usage), status)

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes, call: XksCall) -> Wrapped:
        """Encrypt ``plaintext`` under external key ``key_id`` with AES-GCM and ``aad``,
        asking for the ciphertextDataIntegrityValue (SHA_256) and checking it (spec
        Appendix C). MALFORMED when a field is missing or not Base64, the IV is not 12 or 16
        bytes, the tag not 16, the ciphertext not as long as the plaintext, the
        ciphertextMetadata longer than 20 bytes, or the integrity value does not match."""
        body: dict[str, Any] = {
            "requestMetadata": _metadata(call, principal=True, key_arn=True),
            "plaintext": _b64(plaintext),
            "encryptionAlgorithm": ENCRYPTION_ALGORITHM,
            "ciphertextDataIntegrityValueAlgorithm": CDIV_ALGORITHM,
        }
        if aad:
            body["additionalAuthenticatedData"] = _b64(aad)
        answer = self._call("encrypt", key_id, body)
        ciphertext = _unb64(answer, "ciphertext", "encrypt", required=True)
        iv = _unb64(answer, "initializationVector", "encrypt", required=True)
        tag = _unb64(answer, "authenticationTag", "encrypt", required=True)
        metadata = _unb64(answer, "ciphertextMetadata", "encrypt", required=False)
        cdiv = _unb64(answer, "ciphertextDataIntegrityValue", "encrypt", required=True)
        assert ciphertext is not None and iv is not None and tag is not None and cdiv is not None
        if len(iv) not in IV_LENGTHS:
            raise XksError(Failure.MALFORMED, f"encrypt: the IV is {len(iv)} bytes, not 12 or 16")
        if len(tag) != TAG_LENGTH:
            raise XksError(Failure.MALFORMED, f"encrypt: the tag is {len(tag)} bytes, not 16")
        if len(ciphertext) != len(plaintext):
            raise XksError(
                Failure.MALFORMED,
                f"encrypt: the ciphertext is {len(ciphertext)} bytes for "
                f"{len(plaintext)} bytes of plaintext",
            )
        if metadata is not None and len(metadata) > MAX_METADATA_BYTES:
            raise XksError(
                Failure.MALFORMED,
                f"encrypt: the ciphertextMetadata is {len(metadata)} bytes, more than 20",
            )
        expected = hashlib.sha256(b"".join((aad, metadata or b"", iv, ciphertext, tag))).digest()
        if not hmac.compare_digest(expected, cdiv):
            raise XksError(Failure.MALFORMED, "encrypt: the ciphertextDataIntegrityValue differs")
        return Wrapped(ciphertext, iv, tag, metadata or None)

    def decrypt(self, key_id: str, wrapped: Wrapped, aad: bytes, call: XksCall) -> bytes:
        """Decrypt what encrypt returned, under external key ``key_id`` with ``aad``;
        MALFORMED when the answer has no Base64 plaintext as long as the ciphertext."""
        body: dict[str, Any] = {
            "requestMetadata": _metadata(call, principal=True, key_arn=True),
            "ciphertext": _b64(wrapped.ciphertext),
            "encryptionAlgorithm": ENCRYPTION_ALGORITHM,
            "initializationVector": _b64(wrapped.iv),
            "authenticationTag": _b64(wrapped.tag),
        }
        if wrapped.metadata:
            body["ciphertextMetadata"] = _b64(wrapped.metadata)
        if aad:
            body["additionalAuthenticatedData"] = _b64(aad)
        answer = self._call("decrypt", key_id, body)
        plaintext = _unb64(answer, "plaintext", "decrypt", required=True)
        assert plaintext is not None
        if len(plaintext) != len(wrapped.ciphertext):
            raise XksError(
                Failure.MALFORMED,
                f"decrypt: the plaintext is {len(plaintext)} bytes for "
                f"{len(wrapped.ciphertext)} bytes of ciphertext",
            )
        return plaintext

    # --- one request -------------------------------------------------------------------

    def _target(self, operation: str, key_id: str) -> _Target:
        target = self._targets.get((operation, key_id))
        if target is None:
            if operation == "health":
                path = f"{self._base}/health"
            else:
                path = f"{self._base}/keys/{quote(key_id, safe='')}/{operation}"
            target = _Target(path, sigv4.canonical_uri(path))
            with self._lock:
                if len(self._targets) >= self._MAX_TARGETS:
                    self._targets.clear()
                self._targets[operation, key_id] = target
        return target

    def _amz_date(self) -> tuple[str, str, hmac.HMAC, str]:
        """``x-amz-date`` now, and the day's credential scope, an HMAC-SHA256 keyed with its
        signing key (to copy: ~1 µs less than ``hmac.digest`` with the key) and the
        Authorization header's credential part."""
        now = self._clock()
        second = int(now)
        cached_second, amz_date = self._second
        if cached_second != second:
            amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._second = (second, amz_date)
        day = self._day
        if day[0] != amz_date[:8]:
            date = amz_date[:8]
            endpoint = self._endpoint
            scope = sigv4.credential_scope(date, endpoint.region, SERVICE)
            key = sigv4.derive_signing_key(
                endpoint.secret_access_key, date, endpoint.region, SERVICE
            )
            mac = hmac.new(key, digestmod=hashlib.sha256)
            day = (date, scope, mac, f"{sigv4.ALGORITHM} Credential={endpoint.access_key_id}/")
            self._day = day
        return amz_date, day[1], day[2], day[3]

    def _request(self, target: _Target, body: bytes) -> bytes:
        """The whole signed request (SigV4, spec Appendix A): content-type, host and
        x-amz-date are signed; the body is covered by its hash in the canonical request."""
        amz_date, scope, day_mac, credential = self._amz_date()
        canonical = (
            f"POST\n{target.canonical_uri}\n\n"
            f"content-type:application/json\nhost:{self._host}\nx-amz-date:{amz_date}\n\n"
            f"{_SIGNED_HEADERS}\n{hashlib.sha256(body).hexdigest()}"
        )
        to_sign = (
            f"{sigv4.ALGORITHM}\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        mac = day_mac.copy()
        mac.update(to_sign.encode())
        signature = mac.hexdigest()
        head = (
            f"POST {target.url} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"User-Agent: {_USER_AGENT}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Amz-Date: {amz_date}\r\n"
            f"Authorization: {credential}{scope}, SignedHeaders={_SIGNED_HEADERS}, "
            f"Signature={signature}\r\n\r\n"
        )
        return head.encode("ascii") + body

    def _call(self, operation: str, key_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """POST ``request`` to the operation's URL and return the JSON object of a 200
        answer; XksError for anything else."""
        target = self._target(operation, key_id)
        body = orjson.dumps(request)
        deadline = time.monotonic() + self._timeout
        message = self._request(target, body)
        try:
            if on_bridge():  # on the event loop: wait there, without blocking it
                status, data = wait_for(self._loop_pool.post(message, deadline))
            else:
                status, data = self._pool.post(message, deadline)
        except PoolClosed:
            raise XksError(Failure.UNREACHABLE, f"{operation}: the client is closed") from None
        except (OSError, http.client.HTTPException) as e:
            raise _transport_error(operation, e) from None
        return _answer(operation, status, data)


_SIGNED_HEADERS = "content-type;host;x-amz-date"
_USER_AGENT = "strongroom-xks-client"


def _transport_error(operation: str, e: Exception) -> XksError:
    """The Failure of an exception from the connection, TLS or the HTTP exchange."""
    name = type(e).__name__
    if isinstance(e, ssl.SSLError | ssl.CertificateError):  # handshake, certificate, alert
        return XksError(Failure.TLS, f"{operation}: TLS failed ({name}: {e})")
    if isinstance(e, TimeoutError):  # connecting, sending or waiting for the answer
        return XksError(Failure.TIMED_OUT, f"{operation}: no answer in time")
    if isinstance(e, http.client.HTTPException) and not isinstance(e, ConnectionError):
        # not HTTP: a bad status line, a line too long, a body cut short
        return XksError(Failure.MALFORMED, f"{operation}: the answer is not HTTP ({name})")
    # refused, reset, unreachable, no such name (socket.gaierror), closed without an answer
    return XksError(Failure.UNREACHABLE, f"{operation}: cannot exchange with the proxy ({name})")


def _answer(operation: str, status: int, data: bytes) -> dict[str, Any]:
    """The JSON object of a 200 answer, or the XksError an error answer stands for."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    if status == 200:
        if not isinstance(parsed, dict):
            raise XksError(Failure.MALFORMED, f"{operation}: the answer is not a JSON object")
        return parsed
    name = parsed.get("errorName") if isinstance(parsed, dict) else None
    failure = ERROR_NAMES.get(name) if isinstance(name, str) else None
    if failure is None:
        raise XksError(
            Failure.MALFORMED,
            f"{operation}: HTTP {status} without a known errorName"
            + (f" ({_printable(name, 60)})" if isinstance(name, str) else ""),
        )
    message = _printable(parsed.get("errorMessage")) if isinstance(parsed, dict) else ""
    raise XksError(
        failure, f"{operation}: HTTP {status} {name}" + (f": {message}" if message else "")
    )
