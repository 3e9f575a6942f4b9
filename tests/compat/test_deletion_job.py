"""The scheduled deletion job, driven by a clock the test controls (no sleeping for days):
the app runs in this process under uvicorn, and boto3 talks to it over loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ._in_process import InProcess, in_process, settle
from ._support import (
    assert_kms_error,
    eventually,
    job_records,
    service_change,
    unique_alias,
)

pytestmark = pytest.mark.compat


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcess]:
    with in_process(tmp_path / "data", None) as server:
        yield server


def _wait_until_gone(kms: Any, key_id: str, seconds: float = 5.0) -> float:
    """Poll DescribeKey until NotFoundException; return how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            kms.describe_key(KeyId=key_id)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "NotFoundException", exc.response
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{key_id} still exists {seconds}s after its deletion date passed")


def test_key_is_deleted_after_its_waiting_period_and_not_before(app: InProcess) -> None:
    kms = app.kms
    key = kms.create_key(Description="doomed")["KeyMetadata"]
    alias = unique_alias("doomed")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "t", "TagValue": "v"}])
    blob = kms.encrypt(KeyId=alias, Plaintext=b"gone soon")["CiphertextBlob"]
    scheduled = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert abs((scheduled["DeletionDate"] - (app.clock() + timedelta(days=7))).total_seconds()) < 1

    app.clock.advance(timedelta(days=6))
    settle()
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"][0]["AliasName"] == alias

    app.clock.advance(timedelta(days=1, seconds=1))
    _wait_until_gone(kms, key["KeyId"])
    assert key["KeyId"] not in {k["KeyId"] for k in kms.list_keys(Limit=1000)["Keys"]}
    assert alias not in {a["AliasName"] for a in kms.list_aliases(Limit=100)["Aliases"]}
    assert_kms_error("NotFoundException", kms.list_resource_tags, KeyId=key["KeyId"])
    assert_kms_error("NotFoundException", kms.cancel_key_deletion, KeyId=key["KeyId"])
    with pytest.raises(ClientError) as info:
        kms.decrypt(CiphertextBlob=blob)
    assert info.value.response["Error"]["Code"] in (
        "InvalidCiphertextException",
        "NotFoundException",
    )
    # The alias name is free again.
    fresh = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=alias, TargetKeyId=fresh["KeyId"])
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == fresh["KeyId"]


def test_alias_of_deleted_key_is_not_found(app: InProcess) -> None:
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    alias = unique_alias("cached")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    kms.encrypt(KeyId=alias, Plaintext=b"x")  # resolve the alias once
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    app.clock.advance(timedelta(days=7, seconds=1))
    _wait_until_gone(kms, key["KeyId"])
    arn = key["Arn"].rsplit(":", 1)[0] + ":" + alias
    assert_kms_error(
        "NotFoundException", kms.describe_key, message=f"Alias {arn} is not found.", KeyId=alias
    )


def test_cancelled_and_later_keys_survive_the_job(app: InProcess) -> None:
    kms = app.kms
    cancelled = kms.create_key(Description="cancelled")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=cancelled["KeyId"], PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=cancelled["KeyId"])
    later = kms.create_key(Description="later")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=later["KeyId"], PendingWindowInDays=30)
    kept = kms.create_key(Description="kept")["KeyMetadata"]
    doomed = kms.create_key(Description="doomed")["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)

    app.clock.advance(timedelta(days=8))
    _wait_until_gone(kms, doomed["KeyId"])
    settle()
    assert kms.describe_key(KeyId=cancelled["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    assert kms.describe_key(KeyId=later["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId=kept["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    kms.enable_key(KeyId=cancelled["KeyId"])
    assert kms.encrypt(KeyId=cancelled["KeyId"], Plaintext=b"x")["KeyId"] == cancelled["Arn"]

    app.clock.advance(timedelta(days=23))
    _wait_until_gone(kms, later["KeyId"])
    assert kms.describe_key(KeyId=cancelled["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_deletion_date_follows_the_clock_of_the_server(app: InProcess) -> None:
    app.clock.advance(timedelta(days=100))
    key = app.kms.create_key()["KeyMetadata"]
    out = app.kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=10)
    expected = app.clock() + timedelta(days=10)
    assert abs((out["DeletionDate"] - expected).total_seconds()) < 1
    settle()
    assert app.kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def _list_all_keys(kms: Any, limit: int) -> list[str]:
    ids: list[str] = []
    kwargs: dict[str, Any] = {"Limit": limit}
    while True:
        page = kms.list_keys(**kwargs)
        ids += [k["KeyId"] for k in page["Keys"]]
        if not page["Truncated"]:
            return ids
        kwargs["Marker"] = page["NextMarker"]


def test_list_keys_pages_keys_created_at_the_same_instant(app: InProcess) -> None:
    # The fake clock stands still: every key has the same CreationDate.
    created = [app.kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7)]
    paged = _list_all_keys(app.kms, limit=2)
    assert sorted(paged) == sorted(created)
    assert len(paged) == len(set(paged))


def test_list_keys_continues_after_the_marker_key_is_deleted(app: InProcess) -> None:
    kms = app.kms
    for _ in range(4):
        app.clock.advance(timedelta(seconds=1))  # distinct creation dates: a stable order
        kms.create_key()
    first = kms.list_keys(Limit=2)
    assert first["Truncated"] is True
    last = first["Keys"][-1]["KeyId"]  # the key the page ended on, which the marker names
    kms.schedule_key_deletion(KeyId=last, PendingWindowInDays=7)
    app.clock.advance(timedelta(days=8))
    _wait_until_gone(kms, last)
    rest = kms.list_keys(Limit=10, Marker=first["NextMarker"])
    assert len(rest["Keys"]) == 2


def test_the_deletion_is_in_the_trail_as_aws_records_it(app: InProcess) -> None:
    """ct-delete-key: an AwsServiceEvent by "AWS Internal", the key's ARN in
    responseElements.keyId; here with its intent first, as a request's change."""
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    app.clock.advance(timedelta(days=7, seconds=1))
    _wait_until_gone(kms, key["KeyId"])
    event = eventually(lambda: service_change(app, "DeleteKey", key["Arn"]))
    assert event["responseElements"] == {"keyId": key["Arn"]}
    assert "serviceEventDetails" not in event
    assert event["eventTime"] == app.clock().strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_deletion_whose_intent_cannot_be_written_waits_for_the_trail(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trail refuses the intent (a full disk): the job changes nothing and logs why;
    the next run, once the trail takes it, deletes the key with its intent and event."""
    kms = app.kms
    key = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    core = app.runtime.core
    written = core.trail
    tried: list[str] = []

    def full(records: Any) -> None:
        tried.extend(r["eventName"] for r in records)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(core, "trail", full)
    app.clock.advance(timedelta(days=7, seconds=1))
    settle()
    assert "DeleteKey" in tried
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert job_records(app, "DeleteKey") == []

    monkeypatch.setattr(core, "trail", written)
    _wait_until_gone(kms, key["KeyId"])
    eventually(lambda: service_change(app, "DeleteKey", key["Arn"]))
