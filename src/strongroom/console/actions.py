"""The console's forms as API requests: each action is one KMS operation with the
parameters its form gives, made as the signed-in principal (``console.api``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Form = Mapping[str, list[str]]


class FormError(ValueError):
    """A form the console refuses before any API call (the API would refuse it too)."""


@dataclass(frozen=True, slots=True)
class Request:
    operation: str
    params: dict[str, Any]
    done: str  # what the page says when the call succeeds


def _one(form: Form, name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0].strip() if values else default


def _required(form: Form, name: str, label: str) -> str:
    value = _one(form, name)
    if not value:
        raise FormError(f"{label} is required.")
    return value


def _days(form: Form, name: str, label: str) -> int | None:
    text = _one(form, name)
    if not text:
        return None
    if not text.isdigit():
        raise FormError(f"{label} must be a whole number of days, not {text!r}.")
    return int(text)


def check_policy(text: str) -> str:
    """The policy text if it is a JSON object; FormError naming the line and column where
    it is not (the API checks the rest: MalformedPolicyDocumentException)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormError(
            f"The key policy is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    if not isinstance(document, dict):
        raise FormError("The key policy must be a JSON object.")
    return text


def create_key(form: Form) -> Request:
    params: dict[str, Any] = {"KeySpec": _required(form, "KeySpec", "Key spec")}
    if usage := _one(form, "KeyUsage"):
        params["KeyUsage"] = usage
    if description := _one(form, "Description"):
        params["Description"] = description
    if origin := _one(form, "Origin"):
        params["Origin"] = origin
    if store := _one(form, "CustomKeyStoreId"):
        params["CustomKeyStoreId"] = store
    if _one(form, "MultiRegion") == "true":
        params["MultiRegion"] = True
    tag_key = _one(form, "TagKey")
    if tag_key:
        params["Tags"] = [{"TagKey": tag_key, "TagValue": _one(form, "TagValue")}]
    return Request("CreateKey", params, "Key created.")


def _key(operation: str, done: str) -> Callable[[str, Form], Request]:
    def build(key_id: str, form: Form) -> Request:
        return Request(operation, {"KeyId": key_id}, done)

    return build


def _schedule_deletion(key_id: str, form: Form) -> Request:
    params: dict[str, Any] = {"KeyId": key_id}
    days = _days(form, "PendingWindowInDays", "Waiting period")
    if days is not None:
        params["PendingWindowInDays"] = days
    return Request("ScheduleKeyDeletion", params, "Key deletion scheduled.")


def _put_policy(key_id: str, form: Form) -> Request:
    policy = check_policy(_required(form, "Policy", "Key policy"))
    return Request(
        "PutKeyPolicy",
        {"KeyId": key_id, "PolicyName": "default", "Policy": policy},
        "Key policy saved.",
    )


def _enable_rotation(key_id: str, form: Form) -> Request:
    params: dict[str, Any] = {"KeyId": key_id}
    days = _days(form, "RotationPeriodInDays", "Rotation period")
    if days is not None:
        params["RotationPeriodInDays"] = days
    return Request("EnableKeyRotation", params, "Automatic rotation enabled.")


def _create_grant(key_id: str, form: Form) -> Request:
    operations = [op for op in form.get("Operations", []) if op]
    if not operations:
        raise FormError("Choose at least one operation for the grant.")
    params: dict[str, Any] = {
        "KeyId": key_id,
        "GranteePrincipal": _required(form, "GranteePrincipal", "Grantee principal"),
        "Operations": operations,
    }
    if retiring := _one(form, "RetiringPrincipal"):
        params["RetiringPrincipal"] = retiring
    if name := _one(form, "Name"):
        params["Name"] = name
    return Request("CreateGrant", params, "Grant created.")


def _grant(operation: str, done: str) -> Callable[[str, Form], Request]:
    def build(key_id: str, form: Form) -> Request:
        grant_id = _required(form, "GrantId", "Grant id")
        return Request(operation, {"KeyId": key_id, "GrantId": grant_id}, done)

    return build


def _tag(key_id: str, form: Form) -> Request:
    tag = {"TagKey": _required(form, "TagKey", "Tag key"), "TagValue": _one(form, "TagValue")}
    return Request("TagResource", {"KeyId": key_id, "Tags": [tag]}, "Tag saved.")


def _untag(key_id: str, form: Form) -> Request:
    return Request(
        "UntagResource",
        {"KeyId": key_id, "TagKeys": [_required(form, "TagKey", "Tag key")]},
        "Tag removed.",
    )


def _description(key_id: str, form: Form) -> Request:
    return Request(
        "UpdateKeyDescription",
        {"KeyId": key_id, "Description": _one(form, "Description")},
        "Description saved.",
    )


def _create_alias(key_id: str, form: Form) -> Request:
    name = _required(form, "AliasName", "Alias name")
    return Request("CreateAlias", {"AliasName": name, "TargetKeyId": key_id}, "Alias created.")


KEY_ACTIONS: Mapping[str, Callable[[str, Form], Request]] = {
    "enable": _key("EnableKey", "Key enabled."),
    "disable": _key("DisableKey", "Key disabled."),
    "schedule-deletion": _schedule_deletion,
    "cancel-deletion": _key("CancelKeyDeletion", "Key deletion cancelled; the key is disabled."),
    "policy": _put_policy,
    "description": _description,
    "grant-create": _create_grant,
    "grant-retire": _grant("RetireGrant", "Grant retired."),
    "grant-revoke": _grant("RevokeGrant", "Grant revoked."),
    "rotation-enable": _enable_rotation,
    "rotation-disable": _key("DisableKeyRotation", "Automatic rotation disabled."),
    "rotate-now": _key("RotateKeyOnDemand", "Rotation started."),
    "tag": _tag,
    "untag": _untag,
    "alias-create": _create_alias,
}


def delete_alias(form: Form) -> Request:
    name = _required(form, "AliasName", "Alias name")
    return Request("DeleteAlias", {"AliasName": name}, "Alias deleted.")
