"""The client's pure parts: settings checks, ARN Regions, retry accounting and its report,
and the command line's context pairs."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from strongroom.cli.envelope import parse_context
from strongroom.client import CacheSettings, RetrySettings
from strongroom.client.kms import CallStats, KmsClients, region_of

pytestmark = pytest.mark.unit

GDK = SimpleNamespace(name="GenerateDataKey")


def _throttled() -> tuple[None, dict[str, Any]]:
    return None, {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}


def _ok() -> tuple[None, dict[str, Any]]:
    return None, {"ResponseMetadata": {"HTTPStatusCode": 200}}


def _call(stats: CallStats, attempts: list[tuple[None, dict[str, Any]]]) -> None:
    """What botocore emits for one call: needs-retry after each attempt, after-call once
    with the last attempt's response and RetryAttempts."""
    for response in attempts:
        stats.note_attempt(response=response, attempts=1)
    last = dict(attempts[-1][1])
    last["ResponseMetadata"] = {"RetryAttempts": len(attempts) - 1}
    stats.note_call(parsed=last, model=GDK)


def test_retries_after_throttling_are_counted_and_reported() -> None:
    stats = CallStats()
    _call(stats, [_ok()])
    assert stats.retry_report() is None
    _call(stats, [_throttled(), _throttled(), _ok()])
    _call(stats, [_throttled(), _ok()])
    assert stats.calls["GenerateDataKey"] == 3
    assert stats.retry_report() == "retried 3 times after throttling (ThrottlingException: 3)"


def test_the_last_failed_attempt_is_an_error_not_a_retry() -> None:
    stats = CallStats()
    _call(stats, [_throttled(), _throttled()])
    assert stats.retry_report() == "retried once after throttling (ThrottlingException: 1)"
    assert stats.last_error == ("GenerateDataKey", "ThrottlingException", "Rate exceeded")


def test_retries_after_other_errors_say_errors() -> None:
    stats = CallStats()
    internal = (None, {"Error": {"Code": "KMSInternalException", "Message": ""}})
    _call(stats, [internal, _throttled(), _ok()])
    assert stats.retry_report() == (
        "retried 2 times after errors (KMSInternalException: 1, ThrottlingException: 1)"
    )


def test_region_of_an_arn_else_none() -> None:
    assert region_of("arn:aws:kms:eu-west-1:111122223333:key/abc") == "eu-west-1"
    assert region_of("arn:aws:kms:eu-west-1:111122223333:alias/x") == "eu-west-1"
    assert region_of("alias/x") is None
    assert region_of("1234abcd-12ab-34cd-56ef-1234567890ab") is None


def test_retry_settings_default_to_standard_with_ten_attempts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    clients = KmsClients(region="us-east-1")
    assert (clients.retry_mode, clients.max_attempts) == ("standard", 10)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    clients = KmsClients(region="us-east-1")
    assert (clients.retry_mode, clients.max_attempts) == ("adaptive", 3)
    clients = KmsClients(region="us-east-1", retries=RetrySettings("standard", 7))
    assert (clients.retry_mode, clients.max_attempts) == ("standard", 7)
    client = clients.for_region(None)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 7}


def test_aws_region_comes_before_the_default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert KmsClients().region == "eu-central-1"
    monkeypatch.delenv("AWS_REGION")
    assert KmsClients().region == "eu-west-1"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_age": 0}, "cache max age must be greater than 0 seconds, got 0"),
        ({"max_messages": 0}, "cache max messages must be between 1 and 2**32, got 0"),
        ({"max_bytes": 0}, "cache max bytes must be between 1 and 2**63-1, got 0"),
        ({"capacity": 0}, "cache capacity must be at least 1, got 0"),
    ],
)
def test_cache_settings_name_the_limit_broken(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        CacheSettings(**settings)
    assert str(info.value) == message


def test_context_pairs() -> None:
    assert parse_context(["a=b", "c=d=e", "empty="]) == {"a": "b", "c": "d=e", "empty": ""}
    for pairs, why in [
        (["a"], "expected KEY=VALUE"),
        (["=b"], "expected KEY=VALUE"),
        (["a=1", "a=2"], "key 'a' is given twice"),
        (["aws-crypto-public-key=x"], "reserved for the AWS Encryption SDK"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_context(pairs)
