"""SigV4 of the XKS proxy: service kms-xks-proxy, the prefix's region, any of its credential
sets, ±5 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strongroom.auth import sigv4
from strongroom.xks_proxy.auth import Authenticator, Credential
from strongroom.xks_proxy.errors import AuthenticationFailedException

NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
ONE = Credential("AKIDONE", "secret-one")
TWO = Credential("AKIDTWO", "secret-two")


def _signed(
    credential: Credential,
    *,
    at: datetime = NOW,
    service: str = "kms-xks-proxy",
    region: str = "us-east-1",
    body: bytes = b"{}",
) -> sigv4.HttpRequest:
    amz_date = at.strftime("%Y%m%dT%H%M%SZ")
    headers = [
        ("host", "xks.example"),
        ("x-amz-date", amz_date),
        ("content-type", "application/json"),
    ]
    request = sigv4.HttpRequest("POST", "/p/kms/xks/v1/health", "", headers, body)
    authorization = sigv4.sign(
        request,
        access_key_id=credential.access_key_id,
        secret_access_key=credential.secret_access_key,
        region=region,
        service=service,
        amz_date=amz_date,
    )
    return sigv4.HttpRequest(
        "POST", request.path, "", [*headers, ("authorization", authorization)], body
    )


def test_every_credential_set_is_accepted() -> None:
    authenticator = Authenticator("us-east-1", [ONE, TWO])
    assert authenticator.check(_signed(ONE), now=NOW) == "AKIDONE"
    assert authenticator.check(_signed(TWO), now=NOW) == "AKIDTWO"


@pytest.mark.parametrize("minutes", [-4.9, 4.9])
def test_within_five_minutes(minutes: float) -> None:
    Authenticator("us-east-1", [ONE]).check(
        _signed(ONE, at=NOW + timedelta(minutes=minutes)), now=NOW
    )


@pytest.mark.parametrize(
    "request_",
    [
        _signed(Credential("AKIDONE", "wrong")),
        _signed(Credential("AKIDTHREE", "secret-one")),
        _signed(ONE, service="kms"),
        _signed(ONE, region="eu-west-1"),
        _signed(ONE, at=NOW - timedelta(minutes=5, seconds=1)),
        _signed(ONE, at=NOW + timedelta(minutes=5, seconds=1)),
        sigv4.HttpRequest("POST", "/p/kms/xks/v1/health", "", [("host", "xks.example")], b"{}"),
    ],
    ids=["wrong secret", "unknown key", "service", "region", "expired", "future", "unsigned"],
)
def test_failures_are_authentication_failed(request_: sigv4.HttpRequest) -> None:
    with pytest.raises(AuthenticationFailedException) as caught:
        Authenticator("us-east-1", [ONE, TWO]).check(request_, now=NOW)
    assert "secret-one" not in str(caught.value)


def test_a_tampered_body_fails() -> None:
    signed = _signed(ONE)
    tampered = sigv4.HttpRequest(signed.method, signed.path, "", signed.headers, b'{"x":1}')
    with pytest.raises(AuthenticationFailedException):
        Authenticator("us-east-1", [ONE]).check(tampered, now=NOW)


def test_a_prefix_needs_a_credential() -> None:
    with pytest.raises(ValueError, match="at least one credential"):
        Authenticator("us-east-1", [])
    assert "secret" not in repr(ONE)
