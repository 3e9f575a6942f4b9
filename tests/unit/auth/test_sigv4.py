"""SigV4 verification against the AWS test suite, botocore, and the AWS error cases."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from strongroom.auth import sigv4
from strongroom.auth.sigv4 import (
    MISMATCH_MESSAGE,
    Authorization,
    HttpRequest,
    SigningKeyCache,
    canonical_query,
    canonical_request,
    canonical_uri,
    derive_signing_key,
    parse_authorization,
    sign,
    string_to_sign,
    verify,
)
from strongroom.domain.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "sigv4"
SUITE_KEY_ID = "AKIDEXAMPLE"
SUITE_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SUITE_REGION = "us-east-1"
SUITE_SERVICE = "service"
SUITE_TIME = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)

KMS_HOST = "kms.us-east-1.amazonaws.com"
KMS_BODY = b'{"KeyId": "alias/app", "Plaintext": "aGVsbG8="}'
KMS_DATE = "20150830T123600Z"


# --- the AWS test suite ------------------------------------------------------------------


def _parse_req(text: str) -> HttpRequest:
    """A ``.req`` file as the server would see it: lower-cased names, values as sent."""
    head, _, body = text.partition("\n\n")
    request_line, *header_lines = head.split("\n")
    method, _, rest = request_line.partition(" ")
    target, _, _version = rest.rpartition(" ")
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        if line[:1] in (" ", "\t") and headers:
            # Obsolete line folding (RFC 7230 section 3.2.4): the suite reads each folded
            # line as one more value of the header above it.
            headers.append((headers[-1][0], line))
        else:
            name, _, value = line.partition(":")
            headers.append((name.lower(), value))
    return HttpRequest(method, path, query, tuple(headers), body.encode("utf-8"))


def _read(case: Path, ext: str) -> str:
    return (case / f"{case.name}.{ext}").read_text(encoding="utf-8")


def _with_authz(request: HttpRequest, authz: str) -> HttpRequest:
    return replace(request, headers=(*request.headers, ("authorization", authz)))


CASES = sorted(path.parent for path in VECTORS.rglob("*.req"))
CASE_IDS = [str(case.relative_to(VECTORS)) for case in CASES]


def test_suite_vectors_are_present() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_canonical_request_matches_suite(case: Path) -> None:
    request = _parse_req(_read(case, "req"))
    signed = tuple(_read(case, "creq").split("\n")[-2].split(";"))
    assert canonical_request(request, signed) == _read(case, "creq")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_string_to_sign_matches_suite(case: Path) -> None:
    request = _with_authz(_parse_req(_read(case, "req")), _read(case, "authz"))
    auth = parse_authorization(request, service=SUITE_SERVICE)
    canonical = canonical_request(request, auth.signed_headers)
    assert string_to_sign(canonical, amz_date=auth.amz_date, scope=auth.credential_scope) == (
        _read(case, "sts")
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_verify_accepts_suite_signature(case: Path) -> None:
    request = _with_authz(_parse_req(_read(case, "req")), _read(case, "authz"))
    auth = parse_authorization(request, service=SUITE_SERVICE)
    assert auth.access_key_id == SUITE_KEY_ID
    assert auth.region == SUITE_REGION
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME)
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME, cache=SigningKeyCache())


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sign_reproduces_suite_authorization(case: Path) -> None:
    authz = _read(case, "authz")
    signed = authz.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = _parse_req(_read(case, "req"))
    header = sign(
        request,
        access_key_id=SUITE_KEY_ID,
        secret_access_key=SUITE_SECRET,
        region=SUITE_REGION,
        service=SUITE_SERVICE,
        amz_date="20150830T123600Z",
        signed_headers=signed,
    )
    assert header == authz


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_verify_rejects_suite_request_with_one_body_byte_changed(case: Path) -> None:
    request = _with_authz(_parse_req(_read(case, "req")), _read(case, "authz"))
    body = request.body
    tampered = bytes([body[0] ^ 0x01]) + body[1:] if body else b"\x00"
    forged = replace(request, body=tampered)
    auth = parse_authorization(forged, service=SUITE_SERVICE)
    with pytest.raises(InvalidSignatureException) as raised:
        verify(forged, auth, SUITE_SECRET, now=SUITE_TIME)
    assert raised.value.message == MISMATCH_MESSAGE


def _tweak(value: str) -> str:
    """``value`` with one character changed: its last digit, or else its last letter."""
    for index in range(len(value) - 1, -1, -1):
        if value[index].isdigit():
            return value[:index] + str((int(value[index]) + 1) % 10) + value[index + 1 :]
    for index in range(len(value) - 1, -1, -1):
        if value[index].isalpha():
            other = "b" if value[index] == "a" else "a"
            return value[:index] + other + value[index + 1 :]
    return value + "x"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_verify_rejects_suite_request_with_a_signed_header_changed(case: Path) -> None:
    request = _with_authz(_parse_req(_read(case, "req")), _read(case, "authz"))
    signed = parse_authorization(request, service=SUITE_SERVICE).signed_headers
    for target in signed:
        position = next(i for i, (name, _) in enumerate(request.headers) if name == target)
        headers = list(request.headers)
        headers[position] = (target, _tweak(headers[position][1]))
        forged = replace(request, headers=tuple(headers))
        auth = parse_authorization(forged, service=SUITE_SERVICE)
        with pytest.raises(InvalidSignatureException) as raised:
            verify(forged, auth, SUITE_SECRET, now=SUITE_TIME)
        assert raised.value.message == MISMATCH_MESSAGE, target


# --- canonical forms beyond the suite ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b/../c/", "/a/c/"),
        ("/a/./b", "/a/b"),
        ("/../a", "/a"),
        ("/a%2Fb", "/a%2Fb"),
        ("/a%20b/%7Ec", "/a%20b/~c"),
        ("/caf%C3%A9", "/caf%C3%A9"),
        ("/100%", "/100%25"),
    ],
)
def test_canonical_uri_normalises_and_encodes_each_segment(path: str, expected: str) -> None:
    assert canonical_uri(path) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a", "a="),
        ("a=1&&b=2", "a=1&b=2"),
        ("a=x%2By&a=x+y", "a=x%2By&a=x%2By"),
        ("k=a%3Db", "k=a%3Db"),
        ("k=%7E", "k=~"),
    ],
)
def test_canonical_query_encodes_and_sorts(query: str, expected: str) -> None:
    assert canonical_query(query) == expected


def test_derive_signing_key_matches_aws_documentation_example() -> None:
    # "Examples of how to derive a signing key for Signature Version 4" (AWS General Reference).
    key = derive_signing_key(SUITE_SECRET, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_signing_key_cache_macs_with_the_derived_key_and_stays_bounded() -> None:
    cache = SigningKeyCache(max_entries=2)
    for day in ("20150830", "20150831", "20150901"):
        mac = cache.mac(SUITE_SECRET, day, "us-east-1", "kms")
        mac.update(b"to sign")
        key = derive_signing_key(SUITE_SECRET, day, "us-east-1", "kms")
        assert mac.finalize() == hmac.digest(key, b"to sign", "sha256")
    assert len(cache) == 2
    assert SUITE_SECRET not in repr(cache)


def test_signing_key_cache_rejects_a_size_below_one() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        SigningKeyCache(max_entries=0)


# --- a KMS request -----------------------------------------------------------------------


def _kms_request(
    *extra: tuple[str, str], body: bytes = KMS_BODY, amz_date: str = KMS_DATE
) -> HttpRequest:
    headers = (
        ("host", KMS_HOST),
        ("x-amz-date", amz_date),
        ("x-amz-target", "TrentService.Encrypt"),
        ("content-type", "application/x-amz-json-1.1"),
        *extra,
    )
    return HttpRequest("POST", "/", "", headers, body)


def _signed_kms_request(
    *extra: tuple[str, str],
    signed_headers: tuple[str, ...] | None = None,
    service: str = "kms",
    amz_date: str = KMS_DATE,
    security_token: str | None = None,
) -> HttpRequest:
    request = _kms_request(*extra, amz_date=amz_date)
    header = sign(
        request,
        access_key_id=SUITE_KEY_ID,
        secret_access_key=SUITE_SECRET,
        region="us-east-1",
        service=service,
        amz_date=amz_date,
        signed_headers=signed_headers,
        security_token=security_token,
    )
    return replace(request, headers=(*request.headers, ("authorization", header)))


def test_signed_kms_request_round_trips() -> None:
    request = _signed_kms_request()
    auth = parse_authorization(request)
    assert auth == Authorization(
        access_key_id=SUITE_KEY_ID,
        date="20150830",
        region="us-east-1",
        service="kms",
        signed_headers=("content-type", "host", "x-amz-date", "x-amz-target"),
        signature=auth.signature,
        amz_date=KMS_DATE,
        security_token=None,
    )
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME)


def test_verify_with_the_wrong_secret_raises_aws_mismatch_text() -> None:
    request = _signed_kms_request()
    auth = parse_authorization(request)
    with pytest.raises(InvalidSignatureException) as raised:
        verify(request, auth, SUITE_SECRET + "x", now=SUITE_TIME)
    assert raised.value.message == MISMATCH_MESSAGE


def test_verify_rejects_a_forged_signature_string() -> None:
    request = _signed_kms_request()
    auth = parse_authorization(request)
    for forged in ("0" * 64, auth.signature.upper(), auth.signature[:-1]):
        with pytest.raises(InvalidSignatureException):
            verify(request, replace(auth, signature=forged), SUITE_SECRET, now=SUITE_TIME)


def test_missing_authorization_header_raises_missing_authentication_token() -> None:
    with pytest.raises(MissingAuthenticationTokenException) as raised:
        parse_authorization(_kms_request())
    assert raised.value.message == "Missing Authentication Token"


@pytest.mark.parametrize(
    ("name", "value", "spelled"),
    [
        ("x-amz-target", "TrentService.Encrypt", "'X-Amz-Target'"),
        ("content-type", "application/x-amz-json-1.1", "'Content-Type'"),
        ("x-amz-security-token", "FQoGZXIvYXdzEXAMPLE", "'X-Amz-Security-Token'"),
    ],
)
def test_header_sent_but_not_signed_raises_incomplete_signature(
    name: str, value: str, spelled: str
) -> None:
    others = tuple(h for h in ("content-type", "host", "x-amz-date", "x-amz-target") if h != name)
    request = _signed_kms_request(signed_headers=others)
    if name == "x-amz-security-token":
        request = replace(request, headers=(*request.headers, (name, value)))
    with pytest.raises(IncompleteSignatureException) as raised:
        parse_authorization(request)
    assert raised.value.message == f"{spelled} must be a 'SignedHeader' in the AWS Authorization."


@pytest.mark.parametrize(
    ("left_out", "spelled"),
    [("host", "'Host' or ':authority'"), ("x-amz-date", "'X-Amz-Date'")],
)
def test_host_and_date_must_be_signed(left_out: str, spelled: str) -> None:
    names = ("content-type", "host", "x-amz-date", "x-amz-target")
    request = _signed_kms_request(signed_headers=tuple(n for n in names if n != left_out))
    with pytest.raises(IncompleteSignatureException) as raised:
        parse_authorization(request)
    assert raised.value.message == f"{spelled} must be a 'SignedHeader' in the AWS Authorization."


def test_missing_x_amz_date_raises_incomplete_signature() -> None:
    signed = _signed_kms_request()
    request = replace(signed, headers=tuple(h for h in signed.headers if h[0] != "x-amz-date"))
    with pytest.raises(IncompleteSignatureException, match="'X-Amz-Date' or a 'Date' header"):
        parse_authorization(request)


_GOOD_CREDENTIAL = "Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request"
_GOOD_SIGNED = "SignedHeaders=content-type;host;x-amz-date;x-amz-target"
_GOOD_SIGNATURE = "Signature=" + "ab" * 32


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (f"AWS4-HMAC-SHA512 {_GOOD_CREDENTIAL}, {_GOOD_SIGNED}, {_GOOD_SIGNATURE}", "algorithm"),
        ("Bearer abc", "algorithm"),
        ("AWS4-HMAC-SHA256", "requires 'Credential' parameter"),
        (f"AWS4-HMAC-SHA256 {_GOOD_SIGNED}, {_GOOD_SIGNATURE}", "requires 'Credential'"),
        (f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, {_GOOD_SIGNATURE}", "requires 'SignedHeaders'"),
        (f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, {_GOOD_SIGNED}", "requires 'Signature'"),
        (f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, {_GOOD_SIGNED}, Signature=", "'Signature'"),
        (
            f"AWS4-HMAC-SHA256 Credential AKIDEXAMPLE, {_GOOD_SIGNED}, {_GOOD_SIGNATURE}",
            "missing equal-sign",
        ),
        (
            f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, {_GOOD_CREDENTIAL}, {_GOOD_SIGNED}, "
            f"{_GOOD_SIGNATURE}",
            "repeated 'Credential'",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms, {_GOOD_SIGNED}, "
            f"{_GOOD_SIGNATURE}",
            "exactly 5 slash-delimited elements",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kms/aws5_request, "
            f"{_GOOD_SIGNED}, {_GOOD_SIGNATURE}",
            "valid terminator",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/kms/aws4_request, "
            f"{_GOOD_SIGNED}, {_GOOD_SIGNATURE}",
            "access key id",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015-08-30/us-east-1/kms/aws4_request, "
            f"{_GOOD_SIGNED}, {_GOOD_SIGNATURE}",
            "valid date",
        ),
        (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//kms/aws4_request, "
            f"{_GOOD_SIGNED}, {_GOOD_SIGNATURE}",
            "valid region",
        ),
        (
            f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, "
            f"SignedHeaders=content-type;host;;x-amz-date;x-amz-target, {_GOOD_SIGNATURE}",
            "distinct header names",
        ),
        (
            f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, "
            f"SignedHeaders=content-type;host;host;x-amz-date;x-amz-target, {_GOOD_SIGNATURE}",
            "distinct header names",
        ),
        (
            f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, "
            f"SignedHeaders=content-type;host;x-amz-date;x-amz-target;x-extra, {_GOOD_SIGNATURE}",
            "'x-extra' is named as a SignedHeader, but it does not exist",
        ),
        (f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, {_GOOD_SIGNED}, Signature=\u00e9", "hexadecimal"),
    ],
)
def test_malformed_authorization_raises_incomplete_signature(header: str, fragment: str) -> None:
    request = _kms_request(("authorization", header))
    with pytest.raises(IncompleteSignatureException) as raised:
        parse_authorization(request)
    assert fragment in raised.value.message


def test_two_authorization_headers_raise_incomplete_signature() -> None:
    request = _signed_kms_request()
    twice = replace(request, headers=(*request.headers, request.headers[-1]))
    with pytest.raises(IncompleteSignatureException):
        parse_authorization(twice)


@pytest.mark.parametrize(
    "amz_date", ["2015-08-30T12:36:00Z", "20150830T123600", "20151330T123600Z"]
)
def test_malformed_x_amz_date_raises_incomplete_signature(amz_date: str) -> None:
    header = f"AWS4-HMAC-SHA256 {_GOOD_CREDENTIAL}, {_GOOD_SIGNED}, {_GOOD_SIGNATURE}"
    request = _kms_request(("authorization", header), amz_date=amz_date)
    with pytest.raises(IncompleteSignatureException, match="ISO-8601 'basic format'"):
        parse_authorization(request)


def test_wrong_service_in_scope_raises_invalid_signature() -> None:
    request = _signed_kms_request(service="s3")
    with pytest.raises(InvalidSignatureException) as raised:
        parse_authorization(request)
    assert raised.value.message == "Credential should be scoped to correct service: 'kms'. "


def test_scope_date_other_than_x_amz_date_day_raises_invalid_signature() -> None:
    request = _signed_kms_request()
    headers = tuple(
        (name, value.replace("/20150830/", "/20150829/"))
        if name == "authorization"
        else (name, value)
        for name, value in request.headers
    )
    with pytest.raises(InvalidSignatureException) as raised:
        parse_authorization(replace(request, headers=headers))
    assert raised.value.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20150829' != '20150830', from '20150830T123600Z'."
    )


def test_expired_signature_raises_invalid_signature_with_aws_wording() -> None:
    request = _signed_kms_request()
    auth = parse_authorization(request)
    now = SUITE_TIME + timedelta(minutes=6)
    with pytest.raises(InvalidSignatureException) as raised:
        verify(request, auth, SUITE_SECRET, now=now)
    assert raised.value.message == (
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z "
        "(20150830T124200Z - 5 min.)"
    )


def test_signature_from_the_future_raises_invalid_signature_with_aws_wording() -> None:
    request = _signed_kms_request()
    auth = parse_authorization(request)
    now = SUITE_TIME - timedelta(minutes=5, seconds=1)
    with pytest.raises(InvalidSignatureException) as raised:
        verify(request, auth, SUITE_SECRET, now=now)
    assert raised.value.message == (
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z "
        "(20150830T123059Z + 5 min.)"
    )


@pytest.mark.parametrize("offset", [timedelta(minutes=5), timedelta(minutes=-5)])
def test_signature_exactly_at_the_skew_limit_is_accepted(offset: timedelta) -> None:
    request = _signed_kms_request()
    verify(request, parse_authorization(request), SUITE_SECRET, now=SUITE_TIME + offset)


def test_max_skew_is_configurable_and_named_in_the_message() -> None:
    request = _signed_kms_request()
    auth = parse_authorization(request)
    now = SUITE_TIME + timedelta(minutes=16)
    verify(
        request,
        auth,
        SUITE_SECRET,
        now=SUITE_TIME + timedelta(minutes=14),
        max_skew=timedelta(minutes=15),
    )
    with pytest.raises(InvalidSignatureException, match=r"- 15 min\.\)$"):
        verify(request, auth, SUITE_SECRET, now=now, max_skew=timedelta(minutes=15))


def test_verify_accepts_now_in_another_timezone() -> None:
    request = _signed_kms_request()
    paris = timezone(timedelta(hours=2))
    verify(request, parse_authorization(request), SUITE_SECRET, now=SUITE_TIME.astimezone(paris))


def test_verify_refuses_a_naive_now() -> None:
    request = _signed_kms_request()
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(
            request, parse_authorization(request), SUITE_SECRET, now=SUITE_TIME.replace(tzinfo=None)
        )


def test_signed_security_token_is_reported() -> None:
    request = _signed_kms_request(security_token="FQoGZXIvYXdzEXAMPLE")
    request = replace(
        request, headers=(*request.headers, ("x-amz-security-token", "FQoGZXIvYXdzEXAMPLE"))
    )
    auth = parse_authorization(request)
    assert auth.security_token == "FQoGZXIvYXdzEXAMPLE"
    assert "x-amz-security-token" in auth.signed_headers
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME)


def test_signed_content_sha256_must_be_the_body_hash() -> None:
    digest = hashlib.sha256(KMS_BODY).hexdigest()
    request = _signed_kms_request(("x-amz-content-sha256", digest))
    auth = parse_authorization(request)
    assert "x-amz-content-sha256" in auth.signed_headers
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME)
    forged = replace(request, body=KMS_BODY.replace(b"app", b"ops"))
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        verify(forged, auth, SUITE_SECRET, now=SUITE_TIME)


def test_repeated_header_values_are_joined_in_arrival_order() -> None:
    request = HttpRequest(
        "POST",
        "/",
        "",
        (("host", KMS_HOST), ("x-b", " two  words "), ("x-amz-date", KMS_DATE), ("x-b", "\tz ")),
        b"",
    )
    lines = canonical_request(request, ("host", "x-amz-date", "x-b")).split("\n")
    assert lines[5] == "x-b:two words,z"


# --- botocore, the signer behind boto3 and the AWS CLI -----------------------------------


def _botocore_request(monkeypatch: pytest.MonkeyPatch, token: str | None) -> HttpRequest:
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fixed = datetime(2015, 8, 30, 12, 36, 0)
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda remove_tzinfo=True: fixed)
    body = json.dumps({"KeyId": "alias/app", "Plaintext": "aGVsbG8="}).encode()
    aws_request = AWSRequest(
        method="POST",
        url=f"https://{KMS_HOST}/",
        data=body,
        headers={
            "X-Amz-Target": "TrentService.Encrypt",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    credentials = Credentials(SUITE_KEY_ID, SUITE_SECRET, token)
    botocore_auth.SigV4Auth(credentials, "kms", "us-east-1").add_auth(aws_request)
    prepared = aws_request.prepare()
    # botocore signs the host from the URL; the HTTP client sends it as the Host header.
    headers = [("host", KMS_HOST)]
    headers += [(name.lower(), str(value)) for name, value in prepared.headers.items()]
    assert isinstance(prepared.body, bytes)
    return HttpRequest("POST", "/", "", tuple(headers), prepared.body)


def test_botocore_signed_kms_request_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    request = _botocore_request(monkeypatch, token=None)
    auth = parse_authorization(request)
    assert (auth.access_key_id, auth.region, auth.service) == (SUITE_KEY_ID, "us-east-1", "kms")
    assert "x-amz-target" in auth.signed_headers
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME, cache=SigningKeyCache())


def test_botocore_signed_request_with_session_token_verifies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _botocore_request(monkeypatch, token="FQoGZXIvYXdzEXAMPLE")
    auth = parse_authorization(request)
    assert auth.security_token == "FQoGZXIvYXdzEXAMPLE"
    verify(request, auth, SUITE_SECRET, now=SUITE_TIME)


def test_botocore_signed_request_with_changed_body_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = _botocore_request(monkeypatch, token=None)
    forged = replace(request, body=request.body.replace(b"alias/app", b"alias/ops"))
    with pytest.raises(InvalidSignatureException) as raised:
        verify(forged, parse_authorization(forged), SUITE_SECRET, now=SUITE_TIME)
    assert raised.value.message == MISMATCH_MESSAGE


# --- the remembered Authorization head agrees with the general parser ----------------------


def _outcome(
    request: HttpRequest, service: str = "kms", heads: sigv4.HeaderCache | None = None
) -> object:
    """What parse_authorization makes of ``request``: its result, or the error it raises."""
    try:
        return parse_authorization(request, service=service, heads=heads)
    except (IncompleteSignatureException, InvalidSignatureException) as exc:
        return (type(exc), exc.message)
    except MissingAuthenticationTokenException as exc:
        return (type(exc), exc.message)


def _without(request: HttpRequest, name: str) -> HttpRequest:
    return replace(request, headers=tuple(h for h in request.headers if h[0] != name))


def _with_header(request: HttpRequest, name: str, value: str) -> HttpRequest:
    kept = tuple(h for h in request.headers if h[0] != name)
    return replace(request, headers=(*kept, (name, value)))


def _authz(request: HttpRequest) -> str:
    return next(value for name, value in request.headers if name == "authorization")


def _variants(good: HttpRequest) -> list[HttpRequest]:
    """Requests whose Authorization header starts as ``good``'s does, and that differ from it
    in what the remembered head does not cover."""
    authz = _authz(good)
    head = authz[: authz.rindex("Signature=")]
    return [
        good,
        _with_header(good, "authorization", head + "Signature=" + "0" * 64),
        _with_header(good, "authorization", head + "Signature=" + "A1" * 40),
        _with_header(good, "authorization", head + "Signature="),
        _with_header(good, "authorization", head + "Signature=ab cd"),
        _with_header(good, "authorization", head + "Signature=ab,cd"),
        _with_header(good, "authorization", head + "Signature=ab, Credential=x"),
        _with_header(good, "authorization", head + "Signature=\u00e9\u00e9"),
        _with_header(good, "authorization", head + "Signature=ab "),
        _with_header(good, "authorization", head + "Signature=ab=cd"),
        _with_header(good, "authorization", head + "XSignature=ab"),
        _with_header(good, "authorization", head + "Signature =ab"),
        _without(good, "x-amz-date"),
        _with_header(good, "x-amz-date", "20150830T1236Z"),
        _with_header(good, "x-amz-date", "2015-08-30T12:36:00Z"),
        _with_header(good, "x-amz-date", "20150831T123600Z"),
        _with_header(good, "x-amz-date", " 20150830T123600Z "),
        _without(good, "host"),
        _without(good, "x-amz-target"),
        _with_header(good, "x-amz-security-token", "FQoGZXIvYXdzEXAMPLE"),
        replace(good, headers=(*good.headers, ("x-amz-date", KMS_DATE))),
        replace(good, headers=(*good.headers, ("authorization", authz))),
        _without(good, "authorization"),
    ]


@pytest.mark.parametrize(
    "signed_headers",
    [None, ("content-type", "host", "x-amz-date", "x-amz-target", "x-extra")],
    ids=["all", "with-x-extra"],
)
@pytest.mark.parametrize("service", ["kms", "service"])
def test_a_remembered_authorization_head_parses_as_the_general_parser_does(
    signed_headers: tuple[str, ...] | None, service: str
) -> None:
    good = _signed_kms_request(("x-extra", " a  b "), signed_headers=signed_headers)
    for variant in _variants(good):
        heads = sigv4.HeaderCache()
        cold = _outcome(variant, service, heads)
        _outcome(good, service, heads)  # remembers good's head when the general parser takes it
        warm = _outcome(variant, service, heads)
        assert warm == cold, _authz(variant) if variant.headers else ""


def test_a_head_whose_last_signature_is_another_parameter_is_not_remembered() -> None:
    good = _signed_kms_request()
    authz = _authz(good)
    cut = authz.rindex("Signature=")
    signature = authz[cut + len("Signature=") :]
    # The Signature parameter is spelled "Signature =", so the last "Signature=" is the end
    # of another parameter's name: the general parser's signature is the first one.
    tricky = f"{authz[:cut]}Signature ={signature}, XSignature="
    heads = sigv4.HeaderCache()
    tricked = _with_header(good, "authorization", tricky + signature)
    assert parse_authorization(tricked, heads=heads) == parse_authorization(good, heads=heads)
    assert heads.get(tricky[: tricky.rindex("Signature=")], "kms") is None
    assert heads.get(authz[:cut], "kms") is not None
    other = _with_header(good, "authorization", tricky + "0" * 64)
    assert parse_authorization(other, heads=heads).signature == signature


def test_remembered_heads_stay_bounded() -> None:
    heads = sigv4.HeaderCache(max_entries=8)
    good = _signed_kms_request()
    authz = _authz(good)
    for i in range(13):
        other = authz.replace("Credential=AKIDEXAMPLE", f"Credential=AKID{i:06d}")
        parse_authorization(_with_header(good, "authorization", other), heads=heads)
    assert 0 < len(heads._heads) <= 8


def test_remembered_heads_keep_the_one_in_use_when_full() -> None:
    heads = sigv4.HeaderCache(max_entries=8)
    good = _signed_kms_request()
    authz = _authz(good)
    parse_authorization(good, heads=heads)
    used = authz[: authz.rindex("Signature=")]
    for i in range(20):  # other clients' headers, the first one's between each
        other = authz.replace("Credential=AKIDEXAMPLE", f"Credential=AKID{i:06d}")
        parse_authorization(_with_header(good, "authorization", other), heads=heads)
        parse_authorization(good, heads=heads)
    for i in range(7):  # then seven more: with the one in use, the cache is full, not over
        other = authz.replace("Credential=AKIDEXAMPLE", f"Credential=AKIE{i:06d}")
        parse_authorization(_with_header(good, "authorization", other), heads=heads)
    assert heads.get(used, "kms") is not None
    assert len(heads._heads) == 8


def _verified(request: HttpRequest, heads: sigv4.HeaderCache) -> object:
    """What parsing (with ``heads``) and verifying ``request`` make of it: the Authorization,
    or the error raised."""
    try:
        auth = parse_authorization(request, heads=heads)
        verify(request, auth, SUITE_SECRET, now=SUITE_TIME)
        return auth
    except (
        IncompleteSignatureException,
        InvalidSignatureException,
        MissingAuthenticationTokenException,
    ) as exc:
        return (type(exc), exc.message)


def test_header_fields_given_by_the_caller_decide_as_the_headers_do() -> None:
    # The server passes dict(headers) as HttpRequest.fields when every name is distinct;
    # parsing and verifying must come out the same as from the header list alone.
    good = _signed_kms_request()
    changed_body = replace(good, body=good.body + b" ")
    variants = [*_variants(good), changed_body]
    assert any(isinstance(_verified(v, sigv4.HeaderCache()), Authorization) for v in variants)
    for variant in variants:
        fields = dict(variant.headers)
        if len(fields) != len(variant.headers):
            continue  # a repeated name: the server gives no fields
        heads_plain, heads_fields = sigv4.HeaderCache(), sigv4.HeaderCache()
        for _ in range(2):  # cold, then with the head remembered
            plain = _verified(variant, heads_plain)
            given = _verified(replace(variant, fields=fields), heads_fields)
            assert given == plain, _authz(variant) if variant.headers else ""
