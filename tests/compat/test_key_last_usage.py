"""GetKeyLastUsage and kms:TrailingDaysWithoutKeyUsage against a real server.

Sources of the expectations (AWS KMS documentation):
* API reference, GetKeyLastUsage (the botocore model's documentation): KeyLastUsage is empty
  when the key was not used since TrackingStartDate; TrackingStartDate is "the date from
  which KMS began recording cryptographic activity for this key, or the date the KMS key was
  created, whichever is later"; ReEncrypt records both keys; alias names are not supported.
* Developer guide, "Determine past usage of a KMS key" (examine-last-usage): the tracked
  operations, "a delay of up to one hour", and the example responses (KeyId the key id the
  request named, "KeyLastUsage": {} for an unused key, whole-second Timestamp).
* Developer guide, "Condition keys for AWS KMS" and "AWS KMS permissions":
  kms:TrailingDaysWithoutKeyUsage is a condition key of DisableKey and ScheduleKeyDeletion,
  whole days since the last use (since the key's creation or the start of tracking when
  never used); AWS's own example denies both actions while it is at most N days
  (AWS Security Blog, "Identify unused AWS KMS keys and prevent accidental key deletions").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ._in_process import InProcess, fresh_database, in_process
from ._support import ACCOUNT, assert_kms_error, audit_events

pytestmark = pytest.mark.compat


def _event(server: Any, key_arn: str, request_id: str) -> dict[str, Any]:
    _, events = audit_events(server, "--key", key_arn)
    found = [e for e in events if e["requestID"] == request_id]
    assert len(found) == 1, events
    return found[0]


def test_a_key_never_used_has_an_empty_last_usage(kms: Any, key: dict[str, Any]) -> None:
    got = kms.get_key_last_usage(KeyId=key["KeyId"])
    assert got["KeyId"] == key["KeyId"]
    assert got["KeyLastUsage"] == {}
    assert got["KeyCreationDate"] == key["CreationDate"]
    # Made after tracking began: tracking starts with the key.
    assert got["TrackingStartDate"] == key["CreationDate"]


def test_encrypt_is_the_last_use_with_its_audit_event_id(
    server: Any, kms: Any, key: dict[str, Any]
) -> None:
    sent = kms.encrypt(KeyId=key["Arn"], Plaintext=b"tracked")
    request_id = sent["ResponseMetadata"]["RequestId"]
    usage = kms.get_key_last_usage(KeyId=key["Arn"])["KeyLastUsage"]
    event = _event(server, key["Arn"], request_id)
    assert usage["Operation"] == "Encrypt"
    assert usage["KmsRequestId"] == request_id
    assert usage["CloudTrailEventId"] == event["eventID"]
    assert usage["Timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ") == event["eventTime"]


def test_re_encrypt_is_the_last_use_of_both_keys(kms: Any) -> None:
    source = kms.create_key()["KeyMetadata"]
    destination = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=source["KeyId"], Plaintext=b"moving")["CiphertextBlob"]
    moved = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=destination["KeyId"])
    request_id = moved["ResponseMetadata"]["RequestId"]
    for key in (source, destination):
        usage = kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"]
        assert (usage["Operation"], usage["KmsRequestId"]) == ("ReEncrypt", request_id)


def test_a_failed_request_is_not_a_use(kms: Any, key: dict[str, Any]) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    assert_kms_error("DisabledException", kms.encrypt, KeyId=key["KeyId"], Plaintext=b"x")
    assert kms.get_key_last_usage(KeyId=key["KeyId"])["KeyLastUsage"] == {}


def test_an_alias_name_is_refused(kms: Any, aliased_key: dict[str, Any]) -> None:
    assert_kms_error("NotFoundException", kms.get_key_last_usage, KeyId=aliased_key["alias"])


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with fresh_database(request.param) as url:
        yield url


def test_uses_reach_the_database_within_the_flush_interval(
    tmp_path: Path, database: str | None
) -> None:
    with in_process(tmp_path / "data", database, usage_flush_seconds=0.1) as app:
        key = app.kms.create_key()["KeyMetadata"]
        sent = app.kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
        deadline = time.monotonic() + 5
        while True:
            with app.runtime.core.store.transaction() as tx:
                stored = tx.key_usage.get(key["Arn"])
            if stored is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert stored is not None
        assert stored.operation == "GenerateDataKey"
        assert stored.request_id == sent["ResponseMetadata"]["RequestId"]


def test_uses_are_written_when_the_server_stops(tmp_path: Path, database: str | None) -> None:
    # The default interval (60 s) does not pass: only the flush on shutdown writes the use.
    with in_process(tmp_path / "data", database) as app:
        key = app.kms.create_key(KeyUsage="GENERATE_VERIFY_MAC", KeySpec="HMAC_256")
        arn = key["KeyMetadata"]["Arn"]
        app.kms.generate_mac(KeyId=arn, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    with in_process(tmp_path / "data", database) as again:
        usage = again.kms.get_key_last_usage(KeyId=arn)["KeyLastUsage"]
        assert usage["Operation"] == "GenerateMac"


def test_an_older_use_does_not_replace_a_newer_one(tmp_path: Path, database: str | None) -> None:
    from strongroom.domain.models import KeyUse

    with in_process(tmp_path / "data", database) as app:
        arn = app.kms.create_key()["KeyMetadata"]["Arn"]
        now = app.clock()
        newer = KeyUse("Decrypt", now, "event-new", "request-new")
        older = KeyUse("Encrypt", now - timedelta(minutes=5), "event-old", "request-old")
        store = app.runtime.core.store
        with store.transaction() as tx:  # as two nodes flushing in the wrong order
            tx.key_usage.record({arn: newer})
        with store.transaction() as tx:
            tx.key_usage.record({arn: older})
        with store.transaction() as tx:
            assert tx.key_usage.get(arn) == newer


def _guarded_policy(days: int) -> str:
    """AWS's example: deny disabling or deleting a key used in the last ``days`` days."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:ScheduleKeyDeletion", "kms:DisableKey"],
                    "Resource": "*",
                    "Condition": {
                        "NumericLessThanEquals": {"kms:TrailingDaysWithoutKeyUsage": str(days)}
                    },
                },
            ],
        }
    )


def _tracking_began(app: InProcess, when: datetime) -> None:
    """Make the database one whose tracking began at ``when``, as one upgraded long ago."""
    import sqlalchemy as sa

    engine = sa.create_engine(app.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE key_usage_tracking SET started = :t"), {"t": when.timestamp()}
            )
    finally:
        engine.dispose()


def test_tracking_start_is_the_later_of_the_keys_creation_and_the_start_of_tracking(
    tmp_path: Path, database: str | None
) -> None:
    with in_process(tmp_path / "data", database) as app:
        began = app.clock() - timedelta(days=100)
        _tracking_began(app, began)
        app.clock.advance(timedelta(days=-150))
        older = app.kms.create_key()["KeyMetadata"]
        app.clock.advance(timedelta(days=100))
        newer = app.kms.create_key()["KeyMetadata"]
        got = app.kms.get_key_last_usage(KeyId=older["Arn"])
        assert got["KeyLastUsage"] == {}
        assert got["KeyCreationDate"] < got["TrackingStartDate"]
        assert abs(got["TrackingStartDate"].timestamp() - began.timestamp()) < 0.01
        got = app.kms.get_key_last_usage(KeyId=newer["Arn"])
        assert got["TrackingStartDate"] == got["KeyCreationDate"] == newer["CreationDate"]


def test_trailing_days_without_key_usage_guards_deletion_and_disabling(
    tmp_path: Path, database: str | None
) -> None:
    with in_process(tmp_path / "data", database) as app:
        kms = app.kms
        # A use is recorded at its request's (real) time, the services' clock counts the
        # days: tracking began 100 days ago and the keys were made 62 days ago by that clock.
        _tracking_began(app, app.clock() - timedelta(days=100))
        app.clock.advance(timedelta(days=-62))
        used = kms.create_key(Policy=_guarded_policy(30))["KeyMetadata"]["KeyId"]
        unused = kms.create_key(Policy=_guarded_policy(30))["KeyMetadata"]["KeyId"]
        # Never used: 0 days since the key was made.
        assert_kms_error("AccessDeniedException", kms.schedule_key_deletion, KeyId=used)
        assert_kms_error("AccessDeniedException", kms.disable_key, KeyId=used)

        app.clock.advance(timedelta(days=62))  # the clock is back to the real time
        kms.encrypt(KeyId=used, Plaintext=b"still in use")  # 0 days since this use
        assert_kms_error("AccessDeniedException", kms.schedule_key_deletion, KeyId=used)
        kms.disable_key(KeyId=unused)  # 62 days since it was made, never used

        app.clock.advance(timedelta(days=30, hours=23))  # 30 whole days, rounded down
        assert_kms_error("AccessDeniedException", kms.disable_key, KeyId=used)

        app.clock.advance(timedelta(hours=2))  # 31 days without use
        kms.disable_key(KeyId=used)
        scheduled = kms.schedule_key_deletion(KeyId=used, PendingWindowInDays=7)
        assert scheduled["KeyState"] == "PendingDeletion"
