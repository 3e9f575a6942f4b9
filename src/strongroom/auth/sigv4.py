"""AWS Signature Version 4 (AWS4-HMAC-SHA256, header form): parse, verify and sign requests."""

# Pure: no I/O and no clock (callers pass ``now``). The rules are the AWS SigV4 spec for
# services other than S3 ("Create a canonical request for Signature Version 4", AWS IAM
# User Guide), checked against the published AWS test suite in tests/vectors/sigv4; error
# codes and texts are the ones AWS returns.
#
# The hot path (a request whose header names are all distinct, as every SDK sends them)
# reads the headers through one dict, takes the parsed Authorization header from a cache
# keyed by the header up to its signature (credential scope and signed headers repeat on
# every request of a client for a day), hashes the body and the canonical request once
# each, and runs one HMAC from a cached, keyed context. Whenever that path is unsure it
# hands over to the general parser, which is the one that raises, so the two agree on
# every error (tests/unit/auth checks that they agree).

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_from_bytes, unquote_to_bytes

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

from strongroom.domain.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)
from strongroom.domain.lru import LruDict

__all__ = [
    "ALGORITHM",
    "Authorization",
    "HeaderCache",
    "HttpRequest",
    "SigningKeyCache",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "credential_scope",
    "derive_signing_key",
    "parse_authorization",
    "sign",
    "string_to_sign",
    "verify",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
CONTENT_SHA256_MISMATCH_MESSAGE = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)

# Headers that must be covered by the signature whenever they are sent: host and the date
# always (the spec requires them), and those that choose the operation, the body codec and
# the temporary credentials, so that none of them can be swapped in transit. The value is
# the spelling AWS uses in its error messages.
_ALWAYS_SIGNED = {"host": "'Host' or ':authority'", "x-amz-date": "'X-Amz-Date'"}
_SIGNED_IF_PRESENT = {
    "x-amz-target": "'X-Amz-Target'",
    "content-type": "'Content-Type'",
    "x-amz-security-token": "'X-Amz-Security-Token'",
}
_REQUIRED_PARAMETERS = ("Credential", "Signature", "SignedHeaders")


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True)
class HttpRequest:
    """One HTTP request as the server received it.

    ``path`` is the raw request path (percent-encoded as on the wire, or already decoded:
    each segment is decoded once before it is re-encoded). ``query`` is the raw query
    string without ``?``, ``""`` if none. ``headers`` holds every header line in arrival
    order with lower-cased names; repeated names are allowed. Header values are hashed as
    UTF-8, which is how the AWS SDKs encode them. ``fields``, when the caller has it, is
    ``dict(headers)`` of headers whose names are all distinct (None: not known, or a name
    repeats): the verifier then does not build it again.
    """

    method: str
    path: str
    query: str
    headers: Collection[tuple[str, str]]
    body: bytes
    fields: Mapping[str, str] | None = None


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True, unsafe_hash=True)
class Authorization:
    """What the ``Authorization`` header of a request claims; checked for shape only."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    security_token: str | None

    @property
    def credential_scope(self) -> str:
        """``date/region/service/aws4_request``."""
        return credential_scope(self.date, self.region, self.service)


# --- canonical request ----------------------------------------------------------------


def _uri_encode(component: str) -> str:
    # Decode once, then encode every byte outside RFC 3986 "unreserved" (A-Z a-z 0-9 - . _ ~)
    # as %XX with upper-case hex. Invalid escapes such as "%^" stay literal, so "%" -> "%25".
    return quote_from_bytes(unquote_to_bytes(component), safe="")


def canonical_uri(path: str) -> str:
    """The CanonicalURI of ``path`` for a service other than S3.

    Empty and ``.`` segments are dropped, ``..`` removes the segment before it, each
    remaining segment is URI-encoded, and a trailing ``/`` is kept when the path ends in
    one (the normalisation botocore and the AWS SDK for JavaScript v3 sign with).
    """
    if path == "/":
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(_uri_encode(segment))
    if not segments:
        return "/"
    uri = "/" + "/".join(segments)
    return uri + "/" if path.endswith("/") else uri


# A pure function of its argument, remembered for the few paths a server serves (an XKS
# proxy's key/operation paths: seven segments, each decoded and encoded again, ~10 µs).
_canonical_uri_memo = functools.lru_cache(maxsize=256)(canonical_uri)


def canonical_query(query: str) -> str:
    """The CanonicalQueryString: ``name=value`` pairs URI-encoded, sorted by name then value.

    A parameter without ``=`` gets an empty value; ``+`` is a literal plus, not a space.
    """
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for parameter in query.split("&"):
        if not parameter:
            continue
        name, _, value = parameter.partition("=")
        pairs.append((_uri_encode(name), _uri_encode(value)))
    pairs.sort()
    return "&".join([f"{name}={value}" for name, value in pairs])


def _trimall(value: str) -> str:
    # Trim, and collapse each run of whitespace to one space (the spec's Trimall).
    return " ".join(value.split())


def _fields(request: HttpRequest) -> Mapping[str, str] | None:
    """The headers by name, or None when a name repeats (then the general path runs)."""
    if request.fields is not None:
        return request.fields
    headers = request.headers
    fields = dict(headers)
    return fields if len(fields) == len(headers) else None


def _payload_hash(body: bytes, declared: list[str] | None) -> str:
    actual = hashlib.sha256(body).hexdigest()
    if declared is None:
        return actual
    # A signed x-amz-content-sha256 is what the client put in its canonical request; it
    # only proves the body if it is the body's hash, so check it (S3's unsigned and
    # streaming payload modes do not apply to KMS).
    if len(declared) != 1 or declared[0].strip().lower() != actual:
        raise InvalidSignatureException(CONTENT_SHA256_MISMATCH_MESSAGE)
    return declared[0].strip()


def canonical_request(request: HttpRequest, signed_headers: Sequence[str]) -> str:
    """The canonical request of ``request`` over ``signed_headers`` (in the order given).

    Each signed header contributes ``name:value`` where the value is all of its values in
    arrival order, each trimmed with inner whitespace runs collapsed, joined by ``,``. The
    payload hash is the hex SHA-256 of the body, or the ``x-amz-content-sha256`` value
    when that header is signed. Raises InvalidSignatureException when a signed
    ``x-amz-content-sha256`` is not the body's hash.
    """
    fields = _fields(request)
    if fields is None:
        return _canonical_request(request, signed_headers)
    try:  # every name once, so each signed header has exactly one value
        lines = [f"{name}:{' '.join(fields[name].split())}" for name in signed_headers]
    except KeyError:  # a signed header that is not there
        return _canonical_request(request, signed_headers)
    if "x-amz-content-sha256" in signed_headers:
        payload_hash = _payload_hash(request.body, [fields["x-amz-content-sha256"]])
    else:  # the usual case, without a call
        payload_hash = hashlib.sha256(request.body).hexdigest()
    path, query = request.path, request.query
    return "\n".join(
        (
            request.method,
            "/" if path == "/" else _canonical_uri_memo(path),
            canonical_query(query) if query else "",
            *lines,
            "",
            ";".join(signed_headers),
            payload_hash,
        )
    )


def _canonical_request(request: HttpRequest, signed_headers: Sequence[str]) -> str:
    """canonical_request of any request: repeated header names, signed names missing."""
    values: dict[str, list[str]] = {name: [] for name in signed_headers}
    for name, value in request.headers:
        bucket = values.get(name)
        if bucket is not None:
            bucket.append(value)
    lines = [request.method, canonical_uri(request.path), canonical_query(request.query)]
    for name in signed_headers:
        found = values[name]
        if len(found) == 1:
            lines.append(f"{name}:{_trimall(found[0])}")
        else:
            lines.append(f"{name}:{','.join([_trimall(value) for value in found])}")
    lines.append("")
    lines.append(";".join(signed_headers))
    declared = values.get("x-amz-content-sha256")
    lines.append(_payload_hash(request.body, declared if declared else None))
    return "\n".join(lines)


def credential_scope(date: str, region: str, service: str) -> str:
    """``date/region/service/aws4_request``."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def string_to_sign(canonical: str, *, amz_date: str, scope: str) -> str:
    """The string to sign: algorithm, request time, scope and the canonical request's hash."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


# --- signing keys -----------------------------------------------------------------------


def derive_signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = hmac.digest(("AWS4" + secret_access_key).encode("utf-8"), date.encode(), "sha256")
    key = hmac.digest(key, region.encode("utf-8"), "sha256")
    key = hmac.digest(key, service.encode("utf-8"), "sha256")
    return hmac.digest(key, TERMINATOR.encode(), "sha256")


class SigningKeyCache:
    """Derived signing keys per (secret, date, region, service), at most ``max_entries``.

    A key is good for one day, region and service, so a busy server derives each one once a
    day instead of four HMACs a request; it is kept as a keyed HMAC context, which a request
    copies instead of setting HMAC up from the key. Lookups are lock-free dict
    reads; inserts and the oldest-first eviction run under a lock, so the cache is safe to
    share between threads.
    """

    __slots__ = ("_keys", "_lock", "_max_entries")

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max_entries = max_entries
        self._keys: dict[tuple[str, str, str, str], HMAC] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SigningKeyCache(entries={len(self._keys)}, max_entries={self._max_entries})"

    def mac(self, secret_access_key: str, date: str, region: str, service: str) -> HMAC:
        """A fresh HMAC-SHA256 context keyed with this scope's signing key."""
        cache_key = (secret_access_key, date, region, service)
        keyed = self._keys.get(cache_key)
        if keyed is None:
            keyed = HMAC(derive_signing_key(secret_access_key, date, region, service), SHA256())
            with self._lock:
                while len(self._keys) >= self._max_entries:
                    del self._keys[next(iter(self._keys))]
                self._keys[cache_key] = keyed
        return keyed.copy()


def _signature(mac: HMAC, to_sign: str) -> str:
    """The hex signature of a string to sign, from an HMAC context keyed with the signing key."""
    mac.update(to_sign.encode("utf-8"))
    return mac.finalize().hex()


# --- parsing ----------------------------------------------------------------------------


# A pure function of its argument, remembered for the few dates in flight (every request
# signed in the same second has the same one).
@functools.lru_cache(maxsize=16)
def _amz_datetime(value: str) -> datetime | None:
    # ISO 8601 basic format, always UTC: YYYYMMDDTHHMMSSZ. The shape check comes first
    # because fromisoformat also takes the extended forms, which AWS refuses.
    parsed = None
    if (
        len(value) == 16
        and value[8] == "T"
        and value[15] == "Z"
        and (value[:8] + value[9:15]).isdigit()
    ):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
    return parsed


def _parse_amz_date(value: str) -> datetime:
    parsed = _amz_datetime(value)
    if parsed is None:
        raise IncompleteSignatureException(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        )
    return parsed


def _parse_parameters(header: str, rest: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        name, equals, value = part.partition("=")
        if not equals:
            raise IncompleteSignatureException(
                f"'{part}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{header}'."
            )
        name = name.strip()
        if name in parameters:
            raise IncompleteSignatureException(
                f"Authorization header has a repeated '{name}' parameter. Authorization={header}"
            )
        parameters[name] = value.strip()
    return parameters


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignatureException(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    access_key_id, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise IncompleteSignatureException(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'."
        )
    if not access_key_id:
        raise IncompleteSignatureException("Credential should have a non-empty access key id.")
    if not (len(date) == 8 and date.isdigit() and date.isascii()):
        raise IncompleteSignatureException(
            f"Credential should be scoped to a valid date in YYYYMMDD form, not '{date}'."
        )
    if not region:
        raise IncompleteSignatureException("Credential should be scoped to a valid region.")
    if not service:
        raise IncompleteSignatureException("Credential should be scoped to a valid service.")
    return access_key_id, date, region, service


def parse_authorization(
    request: HttpRequest, *, service: str = "kms", heads: HeaderCache | None = None
) -> Authorization:
    """Parse the ``Authorization`` header of ``request`` and check its shape; no crypto.

    Raises MissingAuthenticationTokenException when there is no Authorization header;
    IncompleteSignatureException when the header is malformed (another algorithm, a
    parameter without ``=``, a repeated or missing Credential/SignedHeaders/Signature, a
    credential scope that is not ``key/YYYYMMDD/region/service/aws4_request``), when
    ``x-amz-date`` is missing or not ``YYYYMMDDTHHMMSSZ``, when ``host`` or ``x-amz-date``
    is not signed, when ``x-amz-target``, ``content-type`` or ``x-amz-security-token`` is
    sent but not signed, or when a signed header is not in the request;
    InvalidSignatureException when the scope's service is not ``service`` or the scope's
    date is not the day of ``x-amz-date``.

    ``heads`` remembers the headers parsed before (a server keeps one), so that a client
    signing many requests with one key pays the general parser once.
    """
    if heads is None:
        return _parse_authorization(request, service)
    fields = _fields(request)
    header = fields.get("authorization") if fields is not None else None
    if fields is None or header is None:
        return _parse_authorization(request, service)
    # The usual header ends "..., Signature=<hex>". When its head (all before the hex) is
    # one the general parser accepted before, the signature being letters and digits, the
    # head parses the same again; only the checks against the rest of the request remain.
    cut = header.rfind(_SIGNATURE)
    head, signature = header[:cut], header[cut + len(_SIGNATURE) :]
    plain = cut >= 0 and signature.isascii() and signature.isalnum()
    if plain:
        parsed = heads.get(head, service)
        if parsed is not None:
            auth = _complete(parsed, signature, fields)
            if auth is not None:
                return auth
    auth = _parse_authorization(request, service)
    # Remembered only when "Signature=" starts the last parameter and appears nowhere else:
    # then any head + "Signature=" + letters and digits has this head's other parameters.
    if (
        plain
        and auth.signature == signature
        and head.rstrip().endswith(",")
        and _SIGNATURE not in head
    ):
        heads.put(
            head,
            service,
            (auth.access_key_id, auth.date, auth.region, auth.service, auth.signed_headers),
        )
    return auth


_SIGNATURE = "Signature="
# What the general parser found in an Authorization header up to "Signature=": access key
# id, date, region, service, signed headers.
_ParsedHead = tuple[str, str, str, str, tuple[str, ...]]


class HeaderCache:
    """Authorization headers parsed before, by (header up to "Signature=", service), at most
    ``max_entries``, the least recently used going first. Owned by the server's
    authenticator; a lost race between threads costs one parse, never a wrong answer (an
    entry is a pure function of its key)."""

    __slots__ = ("_heads",)

    def __init__(self, max_entries: int = 1024) -> None:
        self._heads: LruDict[tuple[str, str], _ParsedHead] = LruDict(max_entries)

    def get(self, head: str, service: str) -> _ParsedHead | None:
        heads, entry = self._heads, (head, service)
        found = heads.get(entry)
        if found is not None:
            try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every request
                heads.move_to_end(entry)
            except KeyError:
                pass
        return found

    def put(self, head: str, service: str, parsed: _ParsedHead) -> None:
        self._heads.keep((head, service), parsed)


def _complete(
    parsed: _ParsedHead, signature: str, fields: Mapping[str, str]
) -> Authorization | None:
    """The Authorization of a request whose header head parsed before, after the checks
    that depend on the rest of the request; None when one fails (the general parser then
    raises the error)."""
    amz_date = fields.get("x-amz-date")
    if amz_date is None:
        return None
    amz_date = amz_date.strip()
    access_key_id, date, region, scope_service, signed_headers = parsed
    if date != amz_date[:8] or _amz_datetime(amz_date) is None:
        return None
    for name in signed_headers:
        if name not in fields:
            return None
    for name in _SIGNED_IF_PRESENT:
        if name in fields and name not in signed_headers:
            return None
    token = fields.get("x-amz-security-token")
    return Authorization(  # positional: noticeably cheaper for a frozen dataclass
        access_key_id,
        date,
        region,
        scope_service,
        signed_headers,
        signature,
        amz_date,
        None if token is None else token.strip(),
    )


def _parse_authorization(request: HttpRequest, service: str) -> Authorization:
    """parse_authorization of any request, with every check in AWS's order."""
    header: str | None = None
    amz_date: str | None = None
    security_token: str | None = None
    present: set[str] = set()
    for name, value in request.headers:
        present.add(name)
        if name == "authorization":
            if header is not None:
                raise IncompleteSignatureException(
                    "Request has more than one Authorization header."
                )
            header = value
        elif name == "x-amz-date":
            amz_date = value.strip()
        elif name == "x-amz-security-token":
            security_token = value.strip()
    if header is None:
        raise MissingAuthenticationTokenException("Missing Authentication Token")

    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Unsupported AWS 'algorithm': '{algorithm}'. Use '{ALGORITHM}'."
        )
    parameters = _parse_parameters(header, rest)
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in _REQUIRED_PARAMETERS
        if not parameters.get(name)
    ]
    if amz_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems or amz_date is None:
        raise IncompleteSignatureException(" ".join(problems) + f" Authorization={header}")

    access_key_id, date, region, scope_service = _parse_credential(parameters["Credential"])
    signed_headers = tuple(parameters["SignedHeaders"].split(";"))
    if "" in signed_headers or len(set(signed_headers)) != len(signed_headers):
        raise IncompleteSignatureException(
            f"SignedHeaders must be distinct header names separated by ';', "
            f"got '{parameters['SignedHeaders']}'."
        )
    signature = parameters["Signature"]
    if not signature.isascii():
        raise IncompleteSignatureException("Signature must be hexadecimal.")
    _parse_amz_date(amz_date)
    for name, spelled in _ALWAYS_SIGNED.items():
        if name not in signed_headers:
            raise IncompleteSignatureException(
                f"{spelled} must be a 'SignedHeader' in the AWS Authorization."
            )
    for name, spelled in _SIGNED_IF_PRESENT.items():
        if name in present and name not in signed_headers:
            raise IncompleteSignatureException(
                f"{spelled} must be a 'SignedHeader' in the AWS Authorization."
            )
    for name in signed_headers:
        if name not in present:
            raise IncompleteSignatureException(
                f"'{name}' is named as a SignedHeader, but it does not exist in the HTTP request."
            )

    if scope_service != service:
        # AWS's text, trailing space included.
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{service}'. "
        )
    if date != amz_date[:8]:
        raise InvalidSignatureException(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    return Authorization(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=scope_service,
        signed_headers=signed_headers,
        signature=signature,
        amz_date=amz_date,
        security_token=security_token,
    )


# --- verification and signing -----------------------------------------------------------


def _format_minutes(skew: timedelta) -> str:
    minutes = skew.total_seconds() / 60
    return f"{minutes:g} min."


def verify(
    request: HttpRequest,
    auth: Authorization,
    secret_access_key: str,
    *,
    now: datetime,
    cache: SigningKeyCache | None = None,
    max_skew: timedelta = timedelta(minutes=5),
) -> None:
    """Check that ``auth.signature`` signs ``request`` with ``secret_access_key`` at ``now``.

    ``now`` must be timezone-aware (ValueError otherwise). Raises InvalidSignatureException
    with AWS's texts: "Signature expired: ..." when ``x-amz-date`` is more than
    ``max_skew`` before ``now``, "Signature not yet current: ..." when it is more than
    ``max_skew`` after, and "The request signature we calculated does not match ..." when
    the signature is not the one the secret gives (also when a signed
    ``x-amz-content-sha256`` does not match the body, with S3's text for that case).
    IncompleteSignatureException when ``auth.amz_date`` is not ``YYYYMMDDTHHMMSSZ``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    signed_at = _parse_amz_date(auth.amz_date)
    earliest = now - max_skew
    if signed_at < earliest:
        raise InvalidSignatureException(
            f"Signature expired: {auth.amz_date} is now earlier than "
            f"{_amz(earliest)} ({_amz(now)} - {_format_minutes(max_skew)})"
        )
    latest = now + max_skew
    if signed_at > latest:
        raise InvalidSignatureException(
            f"Signature not yet current: {auth.amz_date} is still later than "
            f"{_amz(latest)} ({_amz(now)} + {_format_minutes(max_skew)})"
        )
    canonical = canonical_request(request, auth.signed_headers)
    date, region, service = auth.date, auth.region, auth.service
    # The scope and the signature written out: two calls fewer than credential_scope and
    # _signature on every request.
    scope = f"{date}/{region}/{service}/{TERMINATOR}"
    to_sign = string_to_sign(canonical, amz_date=auth.amz_date, scope=scope)
    if cache is None:
        mac = HMAC(derive_signing_key(secret_access_key, date, region, service), SHA256())
    else:
        mac = cache.mac(secret_access_key, date, region, service)
    mac.update(to_sign.encode("utf-8"))
    expected = mac.finalize().hex()
    if not (auth.signature.isascii() and hmac.compare_digest(expected, auth.signature)):
        raise InvalidSignatureException(MISMATCH_MESSAGE)


def _amz(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(AMZ_DATE_FORMAT)


def sign(
    request: HttpRequest,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    amz_date: str,
    signed_headers: Sequence[str] | None = None,
    security_token: str | None = None,
) -> str:
    """The ``Authorization`` header value that signs ``request`` (for tests and benchmarks).

    ``request.headers`` must already hold ``host`` and ``x-amz-date`` (equal to
    ``amz_date``); ValueError otherwise. ``signed_headers`` defaults to every header but
    ``authorization``; names are lower-cased, de-duplicated and sorted as the spec requires.
    With ``security_token``, ``x-amz-security-token`` is signed with that value; the caller
    sends the same value in that header.
    """
    names_present = {name for name, _ in request.headers}
    if "host" not in names_present:
        raise ValueError("request headers must contain 'host'")
    if not any(name == "x-amz-date" and value == amz_date for name, value in request.headers):
        raise ValueError(f"request headers must contain x-amz-date: {amz_date}")
    if security_token is not None and "x-amz-security-token" not in names_present:
        request = replace(
            request, headers=(*request.headers, ("x-amz-security-token", security_token))
        )
        names_present.add("x-amz-security-token")
    if signed_headers is None:
        names = sorted(names_present - {"authorization"})
    else:
        names = sorted({name.lower() for name in signed_headers})
        if security_token is not None and "x-amz-security-token" not in names:
            names = sorted([*names, "x-amz-security-token"])
    date = amz_date[:8]
    scope = credential_scope(date, region, service)
    to_sign = string_to_sign(canonical_request(request, names), amz_date=amz_date, scope=scope)
    key = derive_signing_key(secret_access_key, date, region, service)
    signature = _signature(HMAC(key, SHA256()), to_sign)
    return (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
