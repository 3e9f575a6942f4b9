"""The dispatch table: operation name -> handler, and which run on the event loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.handlers import (
    aliases,
    asymmetric,
    crypto,
    data_key_pairs,
    encapsulation,
    grants,
    imports,
    keys,
    mac,
    multiregion,
    policies,
    rotation,
)
from strongroom.services.core import Core, RequestContext

Handler = Callable[[Core, RequestContext, dict[str, Any]], dict[str, Any]]

HANDLERS: Mapping[str, Handler] = {
    "CreateKey": keys.create_key,
    "DescribeKey": keys.describe_key,
    "ListKeys": keys.list_keys,
    "EnableKey": keys.enable_key,
    "DisableKey": keys.disable_key,
    "UpdateKeyDescription": keys.update_key_description,
    "ScheduleKeyDeletion": keys.schedule_key_deletion,
    "CancelKeyDeletion": keys.cancel_key_deletion,
    "ReplicateKey": multiregion.replicate_key,
    "UpdatePrimaryRegion": multiregion.update_primary_region,
    "GetKeyPolicy": policies.get_key_policy,
    "PutKeyPolicy": policies.put_key_policy,
    "ListKeyPolicies": policies.list_key_policies,
    "CreateAlias": aliases.create_alias,
    "UpdateAlias": aliases.update_alias,
    "DeleteAlias": aliases.delete_alias,
    "ListAliases": aliases.list_aliases,
    "TagResource": aliases.tag_resource,
    "UntagResource": aliases.untag_resource,
    "ListResourceTags": aliases.list_resource_tags,
    "Encrypt": crypto.encrypt,
    "Decrypt": crypto.decrypt,
    "ReEncrypt": crypto.re_encrypt,
    "GenerateDataKey": crypto.generate_data_key,
    "GenerateDataKeyWithoutPlaintext": crypto.generate_data_key_without_plaintext,
    "GenerateRandom": crypto.generate_random,
    "GetPublicKey": asymmetric.get_public_key,
    "Sign": asymmetric.sign,
    "Verify": asymmetric.verify,
    "DeriveSharedSecret": asymmetric.derive_shared_secret,
    "Encapsulate": encapsulation.encapsulate,
    "Decapsulate": encapsulation.decapsulate,
    "GenerateMac": mac.generate_mac,
    "VerifyMac": mac.verify_mac,
    "GenerateDataKeyPair": data_key_pairs.generate_data_key_pair,
    "GenerateDataKeyPairWithoutPlaintext": (
        data_key_pairs.generate_data_key_pair_without_plaintext
    ),
    "CreateGrant": grants.create_grant,
    "ListGrants": grants.list_grants,
    "ListRetirableGrants": grants.list_retirable_grants,
    "RetireGrant": grants.retire_grant,
    "RevokeGrant": grants.revoke_grant,
    "EnableKeyRotation": rotation.enable_key_rotation,
    "DisableKeyRotation": rotation.disable_key_rotation,
    "GetKeyRotationStatus": rotation.get_key_rotation_status,
    "RotateKeyOnDemand": rotation.rotate_key_on_demand,
    "ListKeyRotations": rotation.list_key_rotations,
    "GetParametersForImport": imports.get_parameters_for_import,
    "ImportKeyMaterial": imports.import_key_material,
    "DeleteImportedKeyMaterial": imports.delete_imported_key_material,
}

# Operations that, in steady state, touch only in-memory caches: they run on the event
# loop itself; the rest run in a thread pool so database I/O never blocks the loop.
# GenerateDataKeyPair stays in the pool: making an RSA key pair takes up to a second.
HOT_PATH = frozenset(
    {
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateRandom",
        "DescribeKey",
        "GetPublicKey",
        "Sign",
        "Verify",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    }
)
