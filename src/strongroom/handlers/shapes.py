"""Domain objects in the response shapes of the KMS model."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import KeyState
from strongroom.domain.models import Alias, Key, Tag
from strongroom.services.material import material_id

ENCRYPTION_ALGORITHMS = {"SYMMETRIC_DEFAULT": ["SYMMETRIC_DEFAULT"]}


def key_metadata(key: Key) -> dict[str, Any]:
    """``KeyMetadata`` as DescribeKey, CreateKey and friends return it."""
    meta: dict[str, Any] = {
        "AWSAccountId": key.account,
        "KeyId": key.key_id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        "Enabled": key.state is KeyState.ENABLED,
        "Description": key.description,
        "KeyUsage": key.key_usage.value,
        "KeyState": key.state.value,
        "Origin": key.origin.value,
        "KeyManager": key.key_manager.value,
        "CustomerMasterKeySpec": key.key_spec.value,
        "KeySpec": key.key_spec.value,
        "MultiRegion": key.multi_region,
    }
    algorithms = ENCRYPTION_ALGORITHMS.get(key.key_spec.value)
    if algorithms:
        meta["EncryptionAlgorithms"] = algorithms
    if key.deletion_date is not None:
        meta["DeletionDate"] = key.deletion_date
    if key.state is KeyState.PENDING_DELETION and key.pending_window_days is not None:
        meta["PendingDeletionWindowInDays"] = key.pending_window_days
    if key.current_version:
        meta["CurrentKeyMaterialId"] = material_id(key.arn, key.current_version)
    return meta


def alias_entry(alias: Alias) -> dict[str, Any]:
    return {
        "AliasName": alias.name,
        "AliasArn": alias.arn,
        "TargetKeyId": alias.target_key_id,
        "CreationDate": alias.creation_date,
        "LastUpdatedDate": alias.last_updated_date,
    }


def tag_entries(tags: list[Tag]) -> list[dict[str, str]]:
    return [{"TagKey": t.key, "TagValue": t.value} for t in tags]


def tags_from(members: list[dict[str, str]] | None) -> list[Tag]:
    return [Tag(m["TagKey"], m["TagValue"]) for m in members or []]


def page(items_name: str, items: list[Any], next_marker: str | None) -> dict[str, Any]:
    """A List* response: the items, Truncated, and NextMarker when there is more."""
    result: dict[str, Any] = {items_name: items, "Truncated": next_marker is not None}
    if next_marker is not None:
        result["NextMarker"] = next_marker
    return result
