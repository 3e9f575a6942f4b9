"""Aliases with boto3: CreateAlias, UpdateAlias, DeleteAlias, ListAliases."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import ACCOUNT, KEY_ONLY_FORMS, REGION, assert_kms_error, unique_alias

pytestmark = pytest.mark.compat

PREFIX_MESSAGE = (
    'Alias must start with the prefix "alias/". Please see '
    "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
)


def _aliases_of(kms: Any, key_id: str) -> list[dict[str, Any]]:
    return list(kms.list_aliases(KeyId=key_id)["Aliases"])


def _all_aliases(kms: Any, limit: int = 100) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Limit": limit}
    for _ in range(10_000):
        page = kms.list_aliases(**kwargs)
        assert len(page["Aliases"]) <= limit
        found += page["Aliases"]
        if not page["Truncated"]:
            return found
        kwargs["Marker"] = page["NextMarker"]
    raise AssertionError("ListAliases never stopped")


# -- CreateAlias ----------------------------------------------------------------------


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_create_alias_points_at_the_key(kms: Any, key: dict[str, Any], form: str) -> None:
    name = unique_alias()
    target = key["KeyId"] if form == "key id" else key["Arn"]
    kms.create_alias(AliasName=name, TargetKeyId=target)
    [entry] = _aliases_of(kms, key["KeyId"])
    assert entry["AliasName"] == name
    assert entry["AliasArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"
    assert entry["TargetKeyId"] == key["KeyId"]
    assert entry["CreationDate"] and entry["LastUpdatedDate"]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_create_alias_with_existing_name_fails(kms: Any, aliased_key: dict[str, Any]) -> None:
    other = kms.create_key()["KeyMetadata"]
    name = aliased_key["alias"]
    assert_kms_error(
        "AlreadyExistsException",
        kms.create_alias,
        message=f"An alias with the name arn:aws:kms:{REGION}:{ACCOUNT}:{name} already exists",
        AliasName=name,
        TargetKeyId=other["KeyId"],
    )
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == aliased_key["meta"]["KeyId"]


def test_create_alias_without_prefix_fails_with_aws_message(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "ValidationException",
        kms.create_alias,
        message=PREFIX_MESSAGE,
        AliasName="no-prefix",
        TargetKeyId=key["KeyId"],
    )


@pytest.mark.parametrize("name", ["alias/aws/mine", "alias/aws/s3"])
def test_create_alias_in_reserved_aws_namespace_fails(
    kms: Any, key: dict[str, Any], name: str
) -> None:
    assert_kms_error(
        "NotAuthorizedException", kms.create_alias, AliasName=name, TargetKeyId=key["KeyId"]
    )
    assert _aliases_of(kms, key["KeyId"]) == []


@pytest.mark.parametrize(
    "name", ["alias/with space", "alias/ümlaut", "alias/semi;colon", "alias/dot.ted"]
)
def test_create_alias_with_characters_outside_the_pattern_fails(
    kms: Any, key: dict[str, Any], name: str
) -> None:
    response = assert_kms_error(
        "ValidationException", kms.create_alias, AliasName=name, TargetKeyId=key["KeyId"]
    )
    assert "'aliasName'" in response["Error"]["Message"]
    assert "^[a-zA-Z0-9:/_-]+$" in response["Error"]["Message"]


def test_create_alias_accepts_every_allowed_character(kms: Any, key: dict[str, Any]) -> None:
    name = unique_alias("Az09:/_-")
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == key["KeyId"]
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"
    assert kms.describe_key(KeyId=alias_arn)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_create_alias_longer_than_256_characters_fails(raw_kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "ValidationException",
        raw_kms.create_alias,
        AliasName="alias/" + "a" * 251,
        TargetKeyId=key["KeyId"],
    )


def test_create_alias_with_nothing_after_the_prefix_fails(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "ValidationException", kms.create_alias, AliasName="alias/", TargetKeyId=key["KeyId"]
    )


def test_create_alias_for_unknown_key_fails(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException",
        kms.create_alias,
        AliasName=unique_alias(),
        TargetKeyId="11111111-2222-3333-4444-555555555555",
    )


def test_create_alias_does_not_take_an_alias_as_target(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    name = unique_alias()
    assert_kms_error(
        "NotFoundException", kms.create_alias, AliasName=name, TargetKeyId=aliased_key["alias"]
    )
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=name)


def test_create_alias_for_disabled_key_is_allowed(kms: Any, key: dict[str, Any]) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    name = unique_alias()
    kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyState"] == "Disabled"


def test_create_alias_for_key_pending_deletion_fails(kms: Any, key: dict[str, Any]) -> None:
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.create_alias,
        message=f"{key['Arn']} is pending deletion.",
        AliasName=unique_alias(),
        TargetKeyId=key["KeyId"],
    )


def test_aliases_are_per_region(kms: Any, eu_kms: Any, aliased_key: dict[str, Any]) -> None:
    name = aliased_key["alias"]
    assert_kms_error("NotFoundException", eu_kms.describe_key, KeyId=name)
    eu_key = eu_kms.create_key()["KeyMetadata"]
    eu_kms.create_alias(AliasName=name, TargetKeyId=eu_key["KeyId"])
    assert eu_kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == eu_key["Arn"]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == aliased_key["meta"]["Arn"]


def test_create_alias_for_key_of_another_account_fails(
    kms: Any, other_account: dict[str, Any]
) -> None:
    theirs = other_account["client"].create_key()["KeyMetadata"]
    assert_kms_error(
        "AccessDeniedException",
        kms.create_alias,
        AliasName=unique_alias(),
        TargetKeyId=theirs["Arn"],
    )


# -- UpdateAlias ----------------------------------------------------------------------


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_update_alias_points_it_at_another_key(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    new = kms.create_key()["KeyMetadata"]
    name = aliased_key["alias"]
    blob = kms.encrypt(KeyId=name, Plaintext=b"before")["CiphertextBlob"]
    kms.update_alias(AliasName=name, TargetKeyId=new["KeyId"] if form == "key id" else new["Arn"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == new["KeyId"]
    assert kms.encrypt(KeyId=name, Plaintext=b"after")["KeyId"] == new["Arn"]
    [entry] = _aliases_of(kms, new["KeyId"])
    assert entry["AliasName"] == name and entry["TargetKeyId"] == new["KeyId"]
    assert entry["LastUpdatedDate"] >= entry["CreationDate"]
    assert _aliases_of(kms, aliased_key["meta"]["KeyId"]) == []
    # Old ciphertext still names (and decrypts under) the old key.
    out = kms.decrypt(CiphertextBlob=blob)
    assert out["Plaintext"] == b"before" and out["KeyId"] == aliased_key["meta"]["Arn"]


def test_update_alias_of_unknown_alias_fails(kms: Any, key: dict[str, Any]) -> None:
    name = unique_alias()
    assert_kms_error(
        "NotFoundException",
        kms.update_alias,
        message=f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:{name} is not found.",
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )


def test_update_alias_to_unknown_key_fails_and_keeps_the_target(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    assert_kms_error(
        "NotFoundException",
        kms.update_alias,
        AliasName=aliased_key["alias"],
        TargetKeyId="11111111-2222-3333-4444-555555555555",
    )
    assert (
        kms.describe_key(KeyId=aliased_key["alias"])["KeyMetadata"]["KeyId"]
        == aliased_key["meta"]["KeyId"]
    )


def test_update_alias_to_key_pending_deletion_fails(kms: Any, aliased_key: dict[str, Any]) -> None:
    doomed = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.update_alias,
        AliasName=aliased_key["alias"],
        TargetKeyId=doomed["KeyId"],
    )
    assert (
        kms.describe_key(KeyId=aliased_key["alias"])["KeyMetadata"]["KeyId"]
        == aliased_key["meta"]["KeyId"]
    )


def test_update_alias_away_from_key_pending_deletion_is_allowed(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    kms.schedule_key_deletion(KeyId=aliased_key["meta"]["KeyId"], PendingWindowInDays=7)
    new = kms.create_key()["KeyMetadata"]
    kms.update_alias(AliasName=aliased_key["alias"], TargetKeyId=new["KeyId"])
    assert kms.describe_key(KeyId=aliased_key["alias"])["KeyMetadata"]["KeyId"] == new["KeyId"]


def test_update_alias_without_prefix_fails(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "ValidationException",
        kms.update_alias,
        message=PREFIX_MESSAGE,
        AliasName="no-prefix",
        TargetKeyId=key["KeyId"],
    )


# -- DeleteAlias ----------------------------------------------------------------------


def test_delete_alias_removes_it_but_not_the_key(kms: Any, aliased_key: dict[str, Any]) -> None:
    name = aliased_key["alias"]
    kms.encrypt(KeyId=name, Plaintext=b"warm the cache")
    kms.delete_alias(AliasName=name)
    assert _aliases_of(kms, aliased_key["meta"]["KeyId"]) == []
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=name)
    assert_kms_error("NotFoundException", kms.encrypt, KeyId=name, Plaintext=b"x")
    assert (
        kms.describe_key(KeyId=aliased_key["meta"]["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    )


def test_delete_alias_then_create_it_again_for_another_key(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    name = aliased_key["alias"]
    kms.describe_key(KeyId=name)
    kms.delete_alias(AliasName=name)
    new = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=name, TargetKeyId=new["KeyId"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == new["KeyId"]


def test_delete_alias_of_unknown_alias_fails(kms: Any) -> None:
    name = unique_alias()
    assert_kms_error(
        "NotFoundException",
        kms.delete_alias,
        message=f"Alias arn:aws:kms:{REGION}:{ACCOUNT}:{name} is not found.",
        AliasName=name,
    )


def test_delete_alias_without_prefix_fails(kms: Any) -> None:
    assert_kms_error(
        "ValidationException", kms.delete_alias, message=PREFIX_MESSAGE, AliasName="nope"
    )


def test_delete_alias_of_key_pending_deletion_is_allowed(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    kms.schedule_key_deletion(KeyId=aliased_key["meta"]["KeyId"], PendingWindowInDays=7)
    kms.delete_alias(AliasName=aliased_key["alias"])
    assert _aliases_of(kms, aliased_key["meta"]["KeyId"]) == []


# -- ListAliases ----------------------------------------------------------------------


def test_list_aliases_pages_through_every_alias_once(kms: Any, key: dict[str, Any]) -> None:
    names = {unique_alias("page") for _ in range(5)}
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    listed = [a["AliasName"] for a in _all_aliases(kms, limit=2)]
    assert len(listed) == len(set(listed))
    assert names <= set(listed)
    assert listed == [a["AliasName"] for a in _all_aliases(kms, limit=100)]


def test_list_aliases_of_a_key_lists_only_its_aliases(kms: Any, key: dict[str, Any]) -> None:
    mine = {unique_alias() for _ in range(3)}
    for name in mine:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    other = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=unique_alias(), TargetKeyId=other["KeyId"])
    for ref in (key["KeyId"], key["Arn"]):
        entries = kms.list_aliases(KeyId=ref)["Aliases"]
        assert {a["AliasName"] for a in entries} == mine
        assert {a["TargetKeyId"] for a in entries} == {key["KeyId"]}


def test_list_aliases_of_a_key_with_limit_truncates(kms: Any, key: dict[str, Any]) -> None:
    names = sorted(unique_alias() for _ in range(3))
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    first = kms.list_aliases(KeyId=key["KeyId"], Limit=2)
    assert first["Truncated"] is True and len(first["Aliases"]) == 2
    rest = kms.list_aliases(KeyId=key["KeyId"], Limit=2, Marker=first["NextMarker"])
    assert rest["Truncated"] is False
    assert sorted(a["AliasName"] for a in first["Aliases"] + rest["Aliases"]) == names


def test_list_aliases_of_unknown_key_fails(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException", kms.list_aliases, KeyId="11111111-2222-3333-4444-555555555555"
    )


def test_list_aliases_shows_only_the_signed_region(
    kms: Any, eu_kms: Any, aliased_key: dict[str, Any]
) -> None:
    assert aliased_key["alias"] in {a["AliasName"] for a in _all_aliases(kms)}
    assert aliased_key["alias"] not in {a["AliasName"] for a in _all_aliases(eu_kms)}


def test_list_aliases_with_invalid_marker_fails(kms: Any) -> None:
    assert_kms_error("InvalidMarkerException", kms.list_aliases, Marker="garbage")


def test_a_key_can_have_at_most_50_aliases(kms: Any, key: dict[str, Any]) -> None:
    prefix = unique_alias("many")
    for i in range(50):
        kms.create_alias(AliasName=f"{prefix}-{i:02}", TargetKeyId=key["KeyId"])
    assert_kms_error(
        "LimitExceededException",
        kms.create_alias,
        AliasName=f"{prefix}-50",
        TargetKeyId=key["KeyId"],
    )
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=f"{prefix}-50")
    assert len(kms.list_aliases(KeyId=key["KeyId"], Limit=100)["Aliases"]) == 50
    # UpdateAlias cannot bring a key a 51st alias either; pointing one of its own at it again
    # adds none.
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"{prefix}-other", TargetKeyId=other)
    assert_kms_error(
        "LimitExceededException",
        kms.update_alias,
        AliasName=f"{prefix}-other",
        TargetKeyId=key["KeyId"],
        message=f"Key {key['Arn']} already has 50 aliases, the most a key can have.",
    )
    assert kms.describe_key(KeyId=f"{prefix}-other")["KeyMetadata"]["KeyId"] == other
    kms.update_alias(AliasName=f"{prefix}-00", TargetKeyId=key["KeyId"])
    assert len(kms.list_aliases(KeyId=key["KeyId"], Limit=100)["Aliases"]) == 50
