"""Key lifecycle with boto3: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
UpdateKeyDescription, ScheduleKeyDeletion, CancelKeyDeletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ._support import ACCOUNT, FORMS, KEY_ONLY_FORMS, REGION, assert_kms_error

pytestmark = pytest.mark.compat


def _state(kms: Any, key_id: str) -> str:
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])


# -- CreateKey ------------------------------------------------------------------------


def test_create_key_returns_symmetric_enabled_metadata(kms: Any) -> None:
    before = datetime.now(UTC)
    meta = kms.create_key(Description="compat create")["KeyMetadata"]
    assert meta["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{meta['KeyId']}"
    assert meta["AWSAccountId"] == ACCOUNT
    assert meta["Description"] == "compat create"
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert meta["Origin"] == "AWS_KMS"
    assert meta["KeyManager"] == "CUSTOMER"
    assert meta["MultiRegion"] is False
    assert meta["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert "DeletionDate" not in meta
    assert (
        before - timedelta(seconds=5)
        <= meta["CreationDate"]
        <= datetime.now(UTC) + timedelta(seconds=5)
    )


def test_create_key_gives_each_key_a_new_id(kms: Any) -> None:
    ids = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)}
    assert len(ids) == 3


def test_create_key_without_description_has_empty_description(kms: Any) -> None:
    assert kms.create_key()["KeyMetadata"]["Description"] == ""


def test_create_key_with_tags_stores_them(kms: Any) -> None:
    tags = [{"TagKey": "team", "TagValue": "payments"}, {"TagKey": "env", "TagValue": "ci"}]
    meta = kms.create_key(Tags=tags)["KeyMetadata"]
    listed = kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]
    assert sorted(listed, key=lambda t: t["TagKey"]) == sorted(tags, key=lambda t: t["TagKey"])


def test_create_key_with_reserved_tag_fails(kms: Any) -> None:
    assert_kms_error(
        "TagException",
        kms.create_key,
        message="Tags beginning with aws: are reserved",
        Tags=[{"TagKey": "aws:owner", "TagValue": "x"}],
    )


def test_create_key_with_duplicate_tag_keys_fails(kms: Any) -> None:
    assert_kms_error(
        "TagException",
        kms.create_key,
        message="Duplicate tag keys",
        Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "a", "TagValue": "2"}],
    )


def test_create_key_with_usage_not_of_its_spec_fails(kms: Any) -> None:
    assert_kms_error("ValidationException", kms.create_key, KeyUsage="SIGN_VERIFY")


def test_create_key_with_too_long_description_fails(raw_kms: Any) -> None:
    response = assert_kms_error("ValidationException", raw_kms.create_key, Description="d" * 8193)
    assert "'description'" in response["Error"]["Message"]
    assert "Member must have length less than or equal to 8192" in response["Error"]["Message"]


def test_create_key_with_malformed_policy_fails(kms: Any) -> None:
    assert_kms_error("MalformedPolicyDocumentException", kms.create_key, Policy="not json")


# -- DescribeKey ----------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_describe_key_accepts_every_key_identifier(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    meta = kms.describe_key(KeyId=aliased_key["forms"][form])["KeyMetadata"]
    assert meta["KeyId"] == aliased_key["meta"]["KeyId"]
    assert meta["Arn"] == aliased_key["meta"]["Arn"]


def test_describe_key_of_unknown_key_id_fails_with_not_found(kms: Any) -> None:
    unknown = "11111111-2222-3333-4444-555555555555"
    assert_kms_error(
        "NotFoundException",
        kms.describe_key,
        message=f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{unknown}' does not exist",
        KeyId=unknown,
    )


def test_describe_key_of_malformed_key_id_fails_with_not_found(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException",
        kms.describe_key,
        message="Invalid keyId 'fake-key-id'",
        KeyId="fake-key-id",
    )


def test_describe_key_of_unknown_alias_fails_with_not_found(kms: Any) -> None:
    assert_kms_error("NotFoundException", kms.describe_key, KeyId="alias/does-not-exist-anywhere")


def test_describe_key_with_arn_of_another_region_fails_with_not_found(
    kms: Any, key: dict[str, Any]
) -> None:
    other = key["Arn"].replace(f":{REGION}:", ":eu-west-1:")
    assert_kms_error(
        "NotFoundException", kms.describe_key, message="Invalid arn eu-west-1", KeyId=other
    )


def test_describe_key_with_alias_arn_of_another_region_fails_with_not_found(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    other = aliased_key["forms"]["alias ARN"].replace(f":{REGION}:", ":eu-west-1:")
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=other)


def test_keys_are_per_region(kms: Any, eu_kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error("NotFoundException", eu_kms.describe_key, KeyId=key["KeyId"])
    eu_meta = eu_kms.create_key()["KeyMetadata"]
    assert eu_meta["Arn"] == f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{eu_meta['KeyId']}"
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=eu_meta["KeyId"])


# -- ListKeys -------------------------------------------------------------------------


def _all_keys(kms: Any, limit: int) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {"Limit": limit}
    for _ in range(10_000):
        page = kms.list_keys(**kwargs)
        assert len(page["Keys"]) <= limit
        keys += page["Keys"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            return keys
        kwargs["Marker"] = page["NextMarker"]
    raise AssertionError("ListKeys never stopped")


def test_list_keys_pages_through_every_key_once(kms: Any) -> None:
    created = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}
    keys = _all_keys(kms, limit=3)
    ids = [k["KeyId"] for k in keys]
    assert len(ids) == len(set(ids))
    assert created <= set(ids)
    for entry in keys:
        assert entry["KeyArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{entry['KeyId']}"
    assert ids == [k["KeyId"] for k in _all_keys(kms, limit=1000)]


def test_list_keys_with_limit_truncates_and_gives_a_marker(kms: Any) -> None:
    kms.create_key()
    kms.create_key()
    page = kms.list_keys(Limit=1)
    assert len(page["Keys"]) == 1
    assert page["Truncated"] is True
    assert page["NextMarker"]
    following = kms.list_keys(Limit=1, Marker=page["NextMarker"])
    assert following["Keys"][0]["KeyId"] != page["Keys"][0]["KeyId"]


def test_list_keys_includes_keys_pending_deletion_and_disabled(kms: Any) -> None:
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    pending = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=pending, PendingWindowInDays=7)
    ids = {k["KeyId"] for k in _all_keys(kms, limit=1000)}
    assert {disabled, pending} <= ids


def test_list_keys_shows_only_keys_of_the_signed_region(kms: Any, eu_kms: Any) -> None:
    us = kms.create_key()["KeyMetadata"]["KeyId"]
    eu = eu_kms.create_key()["KeyMetadata"]["KeyId"]
    us_ids = {k["KeyId"] for k in _all_keys(kms, 1000)}
    eu_ids = {k["KeyId"] for k in _all_keys(eu_kms, 1000)}
    assert us in us_ids and us not in eu_ids
    assert eu in eu_ids and eu not in us_ids


def test_list_keys_with_invalid_marker_fails(kms: Any) -> None:
    assert_kms_error("InvalidMarkerException", kms.list_keys, Marker="not-a-marker")


@pytest.mark.parametrize("limit", [0, 1001])
def test_list_keys_with_limit_out_of_range_fails(raw_kms: Any, limit: int) -> None:
    assert_kms_error("ValidationException", raw_kms.list_keys, Limit=limit)


# -- EnableKey / DisableKey -----------------------------------------------------------


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_disable_and_enable_key_change_its_state(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    ref = aliased_key["forms"][form]
    kms.disable_key(KeyId=ref)
    meta = kms.describe_key(KeyId=ref)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled" and meta["Enabled"] is False
    kms.enable_key(KeyId=ref)
    meta = kms.describe_key(KeyId=ref)["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True


def test_disable_key_twice_is_allowed(kms: Any, key: dict[str, Any]) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    kms.disable_key(KeyId=key["KeyId"])
    assert _state(kms, key["KeyId"]) == "Disabled"


def test_enable_key_of_enabled_key_is_allowed(kms: Any, key: dict[str, Any]) -> None:
    kms.enable_key(KeyId=key["KeyId"])
    assert _state(kms, key["KeyId"]) == "Enabled"


@pytest.mark.parametrize("operation", ["enable_key", "disable_key"])
def test_enable_and_disable_key_do_not_take_an_alias(
    kms: Any, aliased_key: dict[str, Any], operation: str
) -> None:
    assert_kms_error("NotFoundException", getattr(kms, operation), KeyId=aliased_key["alias"])


@pytest.mark.parametrize("operation", ["enable_key", "disable_key"])
def test_enable_and_disable_key_of_unknown_key_fail_with_not_found(
    kms: Any, operation: str
) -> None:
    assert_kms_error(
        "NotFoundException", getattr(kms, operation), KeyId="11111111-2222-3333-4444-555555555555"
    )


# -- UpdateKeyDescription -------------------------------------------------------------


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_update_key_description_changes_it(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    kms.update_key_description(KeyId=aliased_key["forms"][form], Description="renamed ✓")
    meta = kms.describe_key(KeyId=aliased_key["meta"]["KeyId"])["KeyMetadata"]
    assert meta["Description"] == "renamed ✓"


def test_update_key_description_to_empty_clears_it(kms: Any, key: dict[str, Any]) -> None:
    kms.update_key_description(KeyId=key["KeyId"], Description="")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == ""


def test_update_key_description_too_long_fails_and_keeps_the_old_one(
    raw_kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error(
        "ValidationException",
        raw_kms.update_key_description,
        KeyId=key["KeyId"],
        Description="x" * 8193,
    )
    assert raw_kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "test key"


def test_update_key_description_of_unknown_key_fails(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException",
        kms.update_key_description,
        KeyId="11111111-2222-3333-4444-555555555555",
        Description="x",
    )


# -- ScheduleKeyDeletion / CancelKeyDeletion ------------------------------------------


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_schedule_key_deletion_defaults_to_30_days(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    before = datetime.now(UTC)
    out = kms.schedule_key_deletion(KeyId=aliased_key["forms"][form])
    assert out["KeyId"] == aliased_key["meta"]["Arn"]
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == 30
    expected = before + timedelta(days=30)
    assert abs((out["DeletionDate"] - expected).total_seconds()) < 60
    meta = kms.describe_key(KeyId=aliased_key["meta"]["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "PendingDeletion"
    assert meta["Enabled"] is False
    assert meta["PendingDeletionWindowInDays"] == 30
    assert meta["DeletionDate"] == out["DeletionDate"]


@pytest.mark.parametrize("days", [7, 30])
def test_schedule_key_deletion_accepts_the_window_bounds(
    kms: Any, key: dict[str, Any], days: int
) -> None:
    before = datetime.now(UTC)
    out = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=days)
    assert out["PendingWindowInDays"] == days
    assert abs((out["DeletionDate"] - (before + timedelta(days=days))).total_seconds()) < 60


@pytest.mark.parametrize(
    ("days", "rule"),
    [
        (6, "Member must have value greater than or equal to 7"),
        (31, "Member must have value less than or equal to 30"),
    ],
)
def test_schedule_key_deletion_outside_7_to_30_days_fails(
    raw_kms: Any, key: dict[str, Any], days: int, rule: str
) -> None:
    assert_kms_error(
        "ValidationException",
        raw_kms.schedule_key_deletion,
        message=f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' "
        f"failed to satisfy constraint: {rule}",
        KeyId=key["KeyId"],
        PendingWindowInDays=days,
    )
    assert _state(raw_kms, key["KeyId"]) == "Enabled"


def test_schedule_key_deletion_does_not_take_an_alias(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    assert_kms_error("NotFoundException", kms.schedule_key_deletion, KeyId=aliased_key["alias"])
    assert _state(kms, aliased_key["meta"]["KeyId"]) == "Enabled"


def test_schedule_key_deletion_of_disabled_key_is_allowed(kms: Any, key: dict[str, Any]) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert _state(kms, key["KeyId"]) == "PendingDeletion"


def test_schedule_key_deletion_twice_fails_with_invalid_state(
    kms: Any, key: dict[str, Any]
) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.schedule_key_deletion,
        message=f"{key['Arn']} is pending deletion.",
        KeyId=key["KeyId"],
    )


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_cancel_key_deletion_leaves_the_key_disabled(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    ref = aliased_key["forms"][form]
    kms.schedule_key_deletion(KeyId=ref, PendingWindowInDays=7)
    out = kms.cancel_key_deletion(KeyId=ref)
    assert out["KeyId"] == aliased_key["meta"]["Arn"]
    meta = kms.describe_key(KeyId=ref)["KeyMetadata"]
    assert meta["KeyState"] == "Disabled"
    assert meta["Enabled"] is False
    assert "DeletionDate" not in meta
    assert "PendingDeletionWindowInDays" not in meta
    kms.enable_key(KeyId=ref)
    assert _state(kms, ref) == "Enabled"


def test_cancel_key_deletion_of_key_not_pending_deletion_fails(
    kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error(
        "KMSInvalidStateException",
        kms.cancel_key_deletion,
        message=f"{key['Arn']} is not pending deletion.",
        KeyId=key["KeyId"],
    )


def test_cancel_key_deletion_does_not_take_an_alias(kms: Any, aliased_key: dict[str, Any]) -> None:
    kms.schedule_key_deletion(KeyId=aliased_key["meta"]["KeyId"], PendingWindowInDays=7)
    assert_kms_error("NotFoundException", kms.cancel_key_deletion, KeyId=aliased_key["alias"])
    assert _state(kms, aliased_key["meta"]["KeyId"]) == "PendingDeletion"


def test_cancel_key_deletion_of_unknown_key_fails(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException", kms.cancel_key_deletion, KeyId="11111111-2222-3333-4444-555555555555"
    )


# -- other accounts -------------------------------------------------------------------


def test_other_account_cannot_use_or_manage_a_key_by_its_arn(
    kms: Any, key: dict[str, Any], other_account: dict[str, Any]
) -> None:
    bob = other_account["client"]
    for call, kwargs in (
        (bob.describe_key, {}),
        (bob.disable_key, {}),
        (bob.update_key_description, {"Description": "mine now"}),
        (bob.schedule_key_deletion, {"PendingWindowInDays": 7}),
        (bob.encrypt, {"Plaintext": b"x"}),
    ):
        assert_kms_error("AccessDeniedException", call, KeyId=key["Arn"], **kwargs)
    meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["Description"] == "test key"


def test_other_account_does_not_see_a_key_by_its_id_or_in_list_keys(
    key: dict[str, Any], other_account: dict[str, Any]
) -> None:
    bob = other_account["client"]
    assert_kms_error("NotFoundException", bob.describe_key, KeyId=key["KeyId"])
    assert key["KeyId"] not in {k["KeyId"] for k in _all_keys(bob, 1000)}
    own = bob.create_key()["KeyMetadata"]
    assert own["AWSAccountId"] == other_account["account"]
    assert own["Arn"].startswith(f"arn:aws:kms:{REGION}:{other_account['account']}:key/")
