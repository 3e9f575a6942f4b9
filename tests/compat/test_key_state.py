"""AWS's key-state table (KMS Developer Guide, "Key states of AWS KMS keys") for every
operation built so far, in the states a symmetric key can be in: Enabled, Disabled,
PendingDeletion; and NotFoundException for a key that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ._support import assert_kms_error, unique_alias

pytestmark = pytest.mark.compat

UNKNOWN = "11111111-2222-3333-4444-555555555555"


@dataclass
class Subject:
    kms: Any
    key_id: str  # the key under test (or UNKNOWN)
    blob: bytes  # a ciphertext of the key under test, made while it was Enabled
    alias: str  # an alias of the key under test
    spare: dict[str, Any]  # an Enabled key


Call = Callable[[Subject], Any]

OPERATIONS: dict[str, Call] = {
    "Encrypt": lambda s: s.kms.encrypt(KeyId=s.key_id, Plaintext=b"x"),
    "Decrypt": lambda s: s.kms.decrypt(CiphertextBlob=s.blob),
    "Decrypt naming the key": lambda s: s.kms.decrypt(CiphertextBlob=s.blob, KeyId=s.key_id),
    "ReEncrypt from": lambda s: s.kms.re_encrypt(
        CiphertextBlob=s.blob, DestinationKeyId=s.spare["KeyId"]
    ),
    "ReEncrypt to": lambda s: s.kms.re_encrypt(
        CiphertextBlob=s.kms.encrypt(KeyId=s.spare["KeyId"], Plaintext=b"x")["CiphertextBlob"],
        DestinationKeyId=s.key_id,
    ),
    "GenerateDataKey": lambda s: s.kms.generate_data_key(KeyId=s.key_id, KeySpec="AES_256"),
    "GenerateDataKeyWithoutPlaintext": lambda s: s.kms.generate_data_key_without_plaintext(
        KeyId=s.key_id, NumberOfBytes=16
    ),
    "DescribeKey": lambda s: s.kms.describe_key(KeyId=s.key_id),
    "ListResourceTags": lambda s: s.kms.list_resource_tags(KeyId=s.key_id),
    "ListAliases": lambda s: s.kms.list_aliases(KeyId=s.key_id),
    "UpdateKeyDescription": lambda s: s.kms.update_key_description(
        KeyId=s.key_id, Description="new"
    ),
    "TagResource": lambda s: s.kms.tag_resource(
        KeyId=s.key_id, Tags=[{"TagKey": "k", "TagValue": "v"}]
    ),
    "UntagResource": lambda s: s.kms.untag_resource(KeyId=s.key_id, TagKeys=["k"]),
    "CreateAlias": lambda s: s.kms.create_alias(AliasName=unique_alias(), TargetKeyId=s.key_id),
    "UpdateAlias to": lambda s: s.kms.update_alias(
        AliasName=_alias_of(s.kms, s.spare["KeyId"]), TargetKeyId=s.key_id
    ),
    "EnableKey": lambda s: s.kms.enable_key(KeyId=s.key_id),
    "DisableKey": lambda s: s.kms.disable_key(KeyId=s.key_id),
    "ScheduleKeyDeletion": lambda s: s.kms.schedule_key_deletion(
        KeyId=s.key_id, PendingWindowInDays=7
    ),
    "CancelKeyDeletion": lambda s: s.kms.cancel_key_deletion(KeyId=s.key_id),
}

CRYPTO = {
    "Encrypt",
    "Decrypt",
    "Decrypt naming the key",
    "ReEncrypt from",
    "ReEncrypt to",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
}
ALWAYS = {"DescribeKey", "ListResourceTags", "ListAliases"}

DISABLED = "DisabledException"
INVALID = "KMSInvalidStateException"


def _expected(operation: str, state: str) -> tuple[str | None, str]:
    """(error code or None for success, message suffix after the key ARN)."""
    if operation == "CancelKeyDeletion":
        return (None, "") if state == "PendingDeletion" else (INVALID, " is not pending deletion.")
    if state == "Enabled" or operation in ALWAYS:
        return None, ""
    if state == "Disabled":
        return (DISABLED, " is disabled.") if operation in CRYPTO else (None, "")
    return INVALID, " is pending deletion."


def _alias_of(kms: Any, key_id: str) -> str:
    name = unique_alias("to")
    kms.create_alias(AliasName=name, TargetKeyId=key_id)
    return name


CASES = [
    pytest.param(op, state, id=f"{op}-{state}")
    for op in OPERATIONS
    for state in ("Enabled", "Disabled", "PendingDeletion")
]


@pytest.mark.parametrize(("operation", "state"), CASES)
def test_key_state_table(kms: Any, operation: str, state: str) -> None:
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"made while enabled")["CiphertextBlob"]
    alias = _alias_of(kms, key["KeyId"])
    if state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    elif state == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    subject = Subject(kms, key["KeyId"], blob, alias, kms.create_key()["KeyMetadata"])
    code, suffix = _expected(operation, state)
    if code is None:
        OPERATIONS[operation](subject)
    else:
        assert_kms_error(code, lambda: OPERATIONS[operation](subject), message=key["Arn"] + suffix)
        assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == state


# Decrypt and ReEncrypt find their key in the blob; naming an unknown one is tested below.
@pytest.mark.parametrize(
    "operation",
    [op for op in OPERATIONS if not op.startswith("Decrypt") and op != "ReEncrypt from"],
)
def test_unknown_key_fails_with_not_found(kms: Any, operation: str) -> None:
    subject = Subject(kms, UNKNOWN, b"", "", kms.create_key()["KeyMetadata"])
    assert_kms_error("NotFoundException", lambda: OPERATIONS[operation](subject))


def test_decrypt_naming_unknown_key_fails_with_not_found(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error("NotFoundException", kms.decrypt, CiphertextBlob=blob, KeyId=UNKNOWN)


def test_decrypt_works_again_after_the_key_is_enabled_again(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    assert_kms_error(
        DISABLED, kms.decrypt, message=f"{key['Arn']} is disabled.", CiphertextBlob=blob
    )
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_decrypt_works_again_after_deletion_is_cancelled_and_key_enabled(
    kms: Any, key: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert_kms_error(INVALID, kms.decrypt, CiphertextBlob=blob)
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert_kms_error(DISABLED, kms.decrypt, CiphertextBlob=blob)
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_disabled_key_is_refused_through_its_alias_too(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    kms.encrypt(KeyId=aliased_key["alias"], Plaintext=b"warm the cache")
    kms.disable_key(KeyId=aliased_key["meta"]["KeyId"])
    for form in ("alias name", "alias ARN"):
        assert_kms_error(
            DISABLED,
            kms.encrypt,
            message=f"{aliased_key['meta']['Arn']} is disabled.",
            KeyId=aliased_key["forms"][form],
            Plaintext=b"x",
        )
