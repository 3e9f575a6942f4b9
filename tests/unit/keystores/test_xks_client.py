"""The XKS client's pure parts: the Wrapped format, the SigV4 signature (checked by the
bundled proxy's verifier), the reading of answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.auth import sigv4
from strongroom.domain.errors import InvalidCiphertextException
from strongroom.keystores.xks_client import (
    ERROR_NAMES,
    Failure,
    Health,
    Wrapped,
    XksClient,
    XksEndpoint,
    XksError,
    _answer,
)
from strongroom.xks_proxy.auth import Authenticator, Credential
from strongroom.xks_proxy.errors import XksError as ProxyError

pytestmark = pytest.mark.unit

SECRET = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE"
ENDPOINT = XksEndpoint(
    "http://xks.example.com:8443",
    "/tenant-1/kms/xks/v1",
    "eu-west-1",
    "AKIAI2SFODNN7EXAMPLE",
    SECRET,
)
NOW = datetime(2026, 12, 6, 15, 30, 12, tzinfo=UTC)


# --- Wrapped --------------------------------------------------------------------------


def test_wrapped_layout_is_lengths_iv_metadata_tag_ciphertext() -> None:
    wrapped = Wrapped(b"C" * 5, b"I" * 12, b"T" * 16, b"meta")
    assert wrapped.to_bytes() == b"\x0c" + b"I" * 12 + b"\x04meta" + b"T" * 16 + b"C" * 5
    assert Wrapped.from_bytes(wrapped.to_bytes()) == wrapped


def test_wrapped_without_metadata_and_with_a_16_byte_iv() -> None:
    wrapped = Wrapped(b"ciphertext", b"i" * 16, b"t" * 16, None)
    data = wrapped.to_bytes()
    assert data[0] == 16 and data[17] == 0
    assert Wrapped.from_bytes(data) == wrapped


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x0b" + b"i" * 11 + b"\x00" + b"t" * 16 + b"c",  # IV of 11 bytes
        b"\x0c" + b"i" * 12,  # ends before the metadata length
        b"\x0c" + b"i" * 12 + b"\x15" + b"m" * 21 + b"t" * 16,  # metadata of 21 bytes
        b"\x0c" + b"i" * 12 + b"\x04mm",  # metadata cut short
        b"\x0c" + b"i" * 12 + b"\x00" + b"t" * 15,  # tag cut short
    ],
)
def test_malformed_wrapped_is_invalid_ciphertext(data: bytes) -> None:
    with pytest.raises(InvalidCiphertextException) as raised:
        Wrapped.from_bytes(data)
    assert raised.value.message == ""


# --- signing ----------------------------------------------------------------------------


def signed_request(
    client: XksClient, operation: str, key_id: str, body: bytes
) -> sigv4.HttpRequest:
    """The request the client sends, as the proxy's server would hand it over."""
    raw = client._request(client._target(operation, key_id), body)
    head, _, sent_body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("ascii").split("\r\n")
    method, path, version = request_line.split(" ")
    assert (method, version) == ("POST", "HTTP/1.1")
    headers = [
        (name.lower(), value.strip()) for name, _, value in (h.partition(":") for h in lines)
    ]
    assert dict(headers)["content-length"] == str(len(body)) and sent_body == body
    return sigv4.HttpRequest(method, path, "", headers, sent_body)


def test_requests_are_signed_as_the_proxy_verifies() -> None:
    client = XksClient(ENDPOINT, clock=NOW.timestamp)
    request = signed_request(client, "encrypt", "key.1_a-b", b'{"plaintext":"AA=="}')
    assert request.path == "/tenant-1/kms/xks/v1/keys/key.1_a-b/encrypt"
    fields = dict(request.headers)
    assert fields["host"] == "xks.example.com:8443"
    assert fields["x-amz-date"] == "20261206T153012Z"
    assert fields["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAI2SFODNN7EXAMPLE/20261206/eu-west-1/kms-xks-proxy/"
        "aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
    )
    # the same signature as strongroom.auth.sigv4.sign
    expected = sigv4.sign(
        request,
        access_key_id=ENDPOINT.access_key_id,
        secret_access_key=SECRET,
        region="eu-west-1",
        service="kms-xks-proxy",
        amz_date="20261206T153012Z",
        signed_headers=["content-type", "host", "x-amz-date"],
    )
    assert fields["authorization"] == expected
    authenticator = Authenticator("eu-west-1", [Credential(ENDPOINT.access_key_id, SECRET)])
    assert authenticator.check(request, now=NOW) == ENDPOINT.access_key_id
    # another body is not covered by this signature
    tampered = sigv4.HttpRequest(
        request.method, request.path, "", request.headers, b'{"plaintext":"AB=="}'
    )
    with pytest.raises(ProxyError):
        authenticator.check(tampered, now=NOW)


def test_the_signature_follows_the_clock_across_days() -> None:
    moments = iter([NOW.timestamp(), NOW.timestamp() + 86400])
    client = XksClient(ENDPOINT, clock=lambda: next(moments))
    authenticator = Authenticator("eu-west-1", [Credential(ENDPOINT.access_key_id, SECRET)])
    first = signed_request(client, "health", "", b"{}")
    second = signed_request(client, "health", "", b"{}")
    assert dict(first.headers)["x-amz-date"] == "20261206T153012Z"
    assert dict(second.headers)["x-amz-date"] == "20261207T153012Z"
    assert "/20261207/" in dict(second.headers)["authorization"]
    authenticator.check(first, now=NOW)
    authenticator.check(second, now=datetime(2026, 12, 7, 15, 30, 12, tzinfo=UTC))


def test_default_ports_are_not_in_the_host_header() -> None:
    for uri, host in (
        ("https://xks.example.com", "xks.example.com"),
        ("https://xks.example.com:443", "xks.example.com"),
        ("http://127.0.0.1:80", "127.0.0.1"),
        ("https://xks.example.com:8443", "xks.example.com:8443"),
    ):
        client = XksClient(XksEndpoint(uri, "/kms/xks/v1", "us-east-1", "A" * 20, SECRET))
        assert client._host == host


def test_key_ids_are_quoted_into_the_path() -> None:
    client = XksClient(ENDPOINT)
    assert client._target("decrypt", "a/b c").url == "/tenant-1/kms/xks/v1/keys/a%2Fb%20c/decrypt"
    assert client._target("health", "").url == "/tenant-1/kms/xks/v1/health"


@pytest.mark.parametrize(
    "uri", ["ftp://xks.example.com", "https://", "https://h/path", "https://h?q=1", "h:443"]
)
def test_an_endpoint_that_is_not_scheme_host_port_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="uri_endpoint"):
        XksClient(XksEndpoint(uri, "/kms/xks/v1", "us-east-1", "A" * 20, SECRET))


def test_reprs_never_show_the_secret() -> None:
    assert SECRET not in repr(ENDPOINT)
    assert SECRET not in repr(XksClient(ENDPOINT))


# --- answers ----------------------------------------------------------------------------


def test_every_spec_error_name_has_its_failure() -> None:
    for name, failure in ERROR_NAMES.items():
        with pytest.raises(XksError) as raised:
            _answer("encrypt", 400, b'{"errorName": "%s", "errorMessage": "why"}' % name.encode())
        assert raised.value.failure is failure
        assert raised.value.detail == f"encrypt: HTTP 400 {name}: why"
    assert len(set(ERROR_NAMES.values())) == 12


@pytest.mark.parametrize(
    ("status", "data"),
    [
        (500, b""),
        (404, b"<html>not found</html>"),
        (400, b'{"errorName": "SomethingElse"}'),
        (400, b'{"errorName": 4}'),
        (400, b"[]"),
        (200, b"[]"),
        (200, b"null"),
        (200, b"{"),
    ],
)
def test_unreadable_answers_are_malformed(status: int, data: bytes) -> None:
    with pytest.raises(XksError) as raised:
        _answer("health", status, data)
    assert raised.value.failure is Failure.MALFORMED


def test_a_proxy_error_message_is_kept_printable_and_short() -> None:
    with pytest.raises(XksError) as raised:
        _answer(
            "decrypt",
            400,
            b'{"errorName": "InvalidStateException", "errorMessage": "a\\nb\\u00e9'
            + b"x" * 600
            + b'"}',
        )
    assert raised.value.detail.startswith("decrypt: HTTP 400 InvalidStateException: ab")
    assert len(raised.value.detail) < 260


def test_health_all_unavailable() -> None:
    assert Health(("UNAVAILABLE",)).all_unavailable
    assert not Health(("UNAVAILABLE", "DEGRADED")).all_unavailable
    assert not Health(("ACTIVE",)).all_unavailable
