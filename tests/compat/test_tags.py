"""Tags with boto3: TagResource, UntagResource, ListResourceTags."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import KEY_ONLY_FORMS, assert_kms_error

pytestmark = pytest.mark.compat


def _tags(kms: Any, key_id: str) -> dict[str, str]:
    return {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}


def _tag(key: str, value: str = "v") -> dict[str, str]:
    return {"TagKey": key, "TagValue": value}


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_tag_resource_adds_tags(kms: Any, aliased_key: dict[str, Any], form: str) -> None:
    ref = aliased_key["forms"][form]
    kms.tag_resource(KeyId=ref, Tags=[_tag("team", "payments"), _tag("empty", "")])
    assert _tags(kms, ref) == {"team": "payments", "empty": ""}


def test_tag_resource_replaces_the_value_of_an_existing_key(kms: Any, key: dict[str, Any]) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag("env", "dev"), _tag("owner", "ann")])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag("env", "prod")])
    assert _tags(kms, key["KeyId"]) == {"env": "prod", "owner": "ann"}


def test_tag_keys_are_case_sensitive(kms: Any, key: dict[str, Any]) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag("Env", "a"), _tag("env", "b")])
    assert _tags(kms, key["KeyId"]) == {"Env": "a", "env": "b"}


@pytest.mark.parametrize("tag_key", ["aws:owner", "aws:"])
def test_tag_resource_with_reserved_prefix_fails(
    kms: Any, key: dict[str, Any], tag_key: str
) -> None:
    assert_kms_error(
        "TagException",
        kms.tag_resource,
        message="Tags beginning with aws: are reserved",
        KeyId=key["KeyId"],
        Tags=[_tag("ok"), _tag(tag_key)],
    )
    assert _tags(kms, key["KeyId"]) == {}


def test_tag_resource_with_duplicate_keys_fails(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "TagException",
        kms.tag_resource,
        message="Duplicate tag keys",
        KeyId=key["KeyId"],
        Tags=[_tag("a", "1"), _tag("a", "2")],
    )
    assert _tags(kms, key["KeyId"]) == {}


def test_tag_resource_beyond_50_tags_fails_and_adds_none(kms: Any, key: dict[str, Any]) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag(f"k{i:02}") for i in range(45)])
    assert_kms_error(
        "TagException",
        kms.tag_resource,
        message="Too many tags",
        KeyId=key["KeyId"],
        Tags=[_tag(f"n{i}") for i in range(6)],
    )
    assert len(_tags(kms, key["KeyId"])) == 45
    # Replacing existing keys does not count twice.
    kms.tag_resource(
        KeyId=key["KeyId"],
        Tags=[_tag(f"k{i:02}", "new") for i in range(45)] + [_tag(f"n{i}") for i in range(5)],
    )
    assert len(_tags(kms, key["KeyId"])) == 50


def test_tag_resource_with_too_long_key_fails(raw_kms: Any, key: dict[str, Any]) -> None:
    response = assert_kms_error(
        "ValidationException", raw_kms.tag_resource, KeyId=key["KeyId"], Tags=[_tag("k" * 129)]
    )
    assert "'tags.1.member.tagKey'" in response["Error"]["Message"]


def test_tag_resource_with_too_long_value_fails(raw_kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "ValidationException", raw_kms.tag_resource, KeyId=key["KeyId"], Tags=[_tag("k", "v" * 257)]
    )


def test_tag_resource_does_not_take_an_alias(kms: Any, aliased_key: dict[str, Any]) -> None:
    assert_kms_error(
        "NotFoundException", kms.tag_resource, KeyId=aliased_key["alias"], Tags=[_tag("a")]
    )


def test_tag_resource_of_unknown_key_fails(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException",
        kms.tag_resource,
        KeyId="11111111-2222-3333-4444-555555555555",
        Tags=[_tag("a")],
    )


def test_tag_and_untag_resource_of_disabled_key_are_allowed(kms: Any, key: dict[str, Any]) -> None:
    kms.disable_key(KeyId=key["KeyId"])
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag("a"), _tag("b")])
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["a"])
    assert _tags(kms, key["KeyId"]) == {"b": "v"}


def test_tag_and_untag_resource_of_key_pending_deletion_fail(kms: Any, key: dict[str, Any]) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag("a")])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    message = f"{key['Arn']} is pending deletion."
    assert_kms_error(
        "KMSInvalidStateException",
        kms.tag_resource,
        message=message,
        KeyId=key["KeyId"],
        Tags=[_tag("b")],
    )
    assert_kms_error(
        "KMSInvalidStateException",
        kms.untag_resource,
        message=message,
        KeyId=key["KeyId"],
        TagKeys=["a"],
    )
    assert _tags(kms, key["KeyId"]) == {"a": "v"}


@pytest.mark.parametrize("form", KEY_ONLY_FORMS)
def test_untag_resource_removes_only_the_named_keys(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    ref = aliased_key["forms"][form]
    kms.tag_resource(KeyId=ref, Tags=[_tag("a"), _tag("b"), _tag("c")])
    kms.untag_resource(KeyId=ref, TagKeys=["a", "c", "never-there"])
    assert _tags(kms, ref) == {"b": "v"}


def test_untag_resource_of_unknown_key_fails(kms: Any) -> None:
    assert_kms_error(
        "NotFoundException",
        kms.untag_resource,
        KeyId="11111111-2222-3333-4444-555555555555",
        TagKeys=["a"],
    )


def test_list_resource_tags_pages_with_limit_and_marker(kms: Any, key: dict[str, Any]) -> None:
    expected = {f"t{i}": str(i) for i in range(5)}
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag(k, v) for k, v in expected.items()])
    seen: dict[str, str] = {}
    kwargs: dict[str, Any] = {"KeyId": key["KeyId"], "Limit": 2}
    pages = 0
    while True:
        page = kms.list_resource_tags(**kwargs)
        pages += 1
        assert len(page["Tags"]) <= 2
        for tag in page["Tags"]:
            assert tag["TagKey"] not in seen
            seen[tag["TagKey"]] = tag["TagValue"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        kwargs["Marker"] = page["NextMarker"]
    assert seen == expected
    assert pages == 3


def test_list_resource_tags_of_untagged_key_is_empty(kms: Any, key: dict[str, Any]) -> None:
    out = kms.list_resource_tags(KeyId=key["KeyId"])
    assert out["Tags"] == [] and out["Truncated"] is False


def test_list_resource_tags_with_invalid_marker_fails(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "InvalidMarkerException", kms.list_resource_tags, KeyId=key["KeyId"], Marker="zzz"
    )


def test_list_resource_tags_of_key_pending_deletion_is_allowed(
    kms: Any, key: dict[str, Any]
) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag("kept")])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert _tags(kms, key["KeyId"]) == {"kept": "v"}


def test_other_account_cannot_tag_or_read_tags(
    kms: Any, key: dict[str, Any], other_account: dict[str, Any]
) -> None:
    bob = other_account["client"]
    assert_kms_error("AccessDeniedException", bob.tag_resource, KeyId=key["Arn"], Tags=[_tag("x")])
    assert_kms_error("AccessDeniedException", bob.list_resource_tags, KeyId=key["Arn"])
    assert _tags(kms, key["KeyId"]) == {}


def test_list_resource_tags_continues_after_the_marker_tag_is_removed(
    kms: Any, key: dict[str, Any]
) -> None:
    kms.tag_resource(KeyId=key["KeyId"], Tags=[_tag(f"t{i}") for i in range(5)])
    first = kms.list_resource_tags(KeyId=key["KeyId"], Limit=2)
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=[t["TagKey"] for t in first["Tags"]])
    rest = kms.list_resource_tags(KeyId=key["KeyId"], Limit=10, Marker=first["NextMarker"])
    assert [t["TagKey"] for t in rest["Tags"]] == ["t2", "t3", "t4"]
