"""Domain objects in the response shapes of the KMS model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.crypto.specs import KEY_SPECS
from strongroom.domain.enums import KeySpec, KeyState, KeyUsage, Origin, SpecFamily
from strongroom.domain.ids import key_arn
from strongroom.domain.models import Alias, Key, Tag
from strongroom.services.managed import PredefinedAlias

U = KeyUsage

ALGORITHM_MEMBERS: Mapping[KeyUsage, str] = {
    U.ENCRYPT_DECRYPT: "EncryptionAlgorithms",
    U.SIGN_VERIFY: "SigningAlgorithms",
    U.GENERATE_VERIFY_MAC: "MacAlgorithms",
    U.KEY_AGREEMENT: "KeyAgreementAlgorithms",
    U.ENCAPSULATE_DECAPSULATE: "EncapsulationAlgorithms",
}
"""The member of KeyMetadata / GetPublicKey that lists a key's algorithms, by key usage:
AWS shows only the one of the key's own usage."""

_ALGORITHM_NAMES: Mapping[tuple[KeySpec, KeyUsage], tuple[str, ...]] = {
    (spec, usage): tuple(a.value for a in algorithms)
    for spec, usages in KEY_SPECS.items()
    for usage, algorithms in usages.items()
}


def algorithm_list(key: Key) -> dict[str, tuple[str, ...]]:
    """``{"SigningAlgorithms": (...)}`` (or the member of the key's usage), from the table of
    ``crypto.specs``, in the order AWS lists them."""
    return {ALGORITHM_MEMBERS[key.key_usage]: _ALGORITHM_NAMES[(key.key_spec, key.key_usage)]}


def key_metadata(
    key: Key, replica_regions: Sequence[str] = (), cluster_id: str | None = None
) -> dict[str, Any]:
    """``KeyMetadata`` as DescribeKey, CreateKey and friends return it; ``replica_regions``
    are those of the replicas in a multi-Region key's set, ``cluster_id`` the CloudHSM
    cluster of a key in a custom key store."""
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
    meta[ALGORITHM_MEMBERS[key.key_usage]] = _ALGORITHM_NAMES[(key.key_spec, key.key_usage)]
    if key.deletion_date is not None:
        meta["DeletionDate"] = key.deletion_date
    pending = (KeyState.PENDING_DELETION, KeyState.PENDING_REPLICA_DELETION)
    if key.state in pending and key.pending_window_days is not None:
        meta["PendingDeletionWindowInDays"] = key.pending_window_days
    if key.multi_region_type is not None and key.primary_region is not None:
        meta["MultiRegionConfiguration"] = {
            "MultiRegionKeyType": key.multi_region_type.value,
            "PrimaryKey": _multi_region_key(key, key.primary_region),
            "ReplicaKeys": [_multi_region_key(key, region) for region in replica_regions],
        }
    if key.custom_key_store_id is not None:
        meta["CustomKeyStoreId"] = key.custom_key_store_id
        if cluster_id is not None:
            meta["CloudHsmClusterId"] = cluster_id
    if key.xks_key_id is not None:
        meta["XksKeyConfiguration"] = {"Id": key.xks_key_id}
    # "present for symmetric encryption keys with AWS_KMS or EXTERNAL origin" (KeyMetadata doc)
    if (
        key.current_material_id is not None
        and key.key_spec.family is SpecFamily.SYMMETRIC
        and key.origin in (Origin.AWS_KMS, Origin.EXTERNAL)
    ):
        meta["CurrentKeyMaterialId"] = key.current_material_id
    # "present only when Origin is EXTERNAL" (ExpirationModel) and only for expiring
    # material (ValidTo); absent while no material is imported.
    if key.origin is Origin.EXTERNAL and key.expiration_model is not None:
        meta["ExpirationModel"] = key.expiration_model.value
        if key.valid_to is not None:
            meta["ValidTo"] = key.valid_to
    return meta


def _multi_region_key(key: Key, region: str) -> dict[str, str]:
    return {"Arn": key_arn(region, key.account, key.key_id), "Region": region}


def alias_entry(alias: Alias | PredefinedAlias) -> dict[str, Any]:
    """An ``AliasListEntry``; a predefined AWS alias with no key yet has only its name and
    ARN (``ListAliases`` doc: "aliases that have no TargetKeyId field")."""
    if isinstance(alias, PredefinedAlias):
        return {"AliasName": alias.name, "AliasArn": alias.arn}
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
