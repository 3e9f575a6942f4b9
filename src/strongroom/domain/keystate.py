"""Which operation is allowed in which key state: AWS's key-state table, as data.

Source: AWS KMS Developer Guide, "Key states of AWS KMS keys" (key-state.md). Each
operation maps the states in which it fails to the footnote that says how; a state
that is absent means the operation succeeds there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from strongroom.domain.enums import KeyState
from strongroom.domain.errors import DisabledException, KmsError, KMSInvalidStateException
from strongroom.domain.models import Key

S = KeyState
Failure = Callable[[str], KmsError]

DISABLED: Failure = lambda arn: DisabledException(f"{arn} is disabled.")  # noqa: E731  [1]
PENDING_DELETION: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [3]
    f"{arn} is pending deletion."
)
# [3] reads "is pending deletion (or pending replica deletion)": the text names the state.
PENDING_REPLICA_DELETION: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [3]
    f"{arn} is pending replica deletion."
)
NOT_PENDING_DELETION: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [4]
    f"{arn} is not pending deletion."
)
PENDING_IMPORT: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [5]
    f"{arn} is pending import."
)
UNAVAILABLE: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [11]
    f"{arn} is unavailable."
)
CREATING: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [14]
    f"{arn} is creating."
)
UPDATING: Failure = lambda arn: KMSInvalidStateException(  # noqa: E731  [15]
    f"{arn} is updating."
)

# Cryptographic operations: Encrypt, Decrypt, GenerateDataKey*, ReEncrypt, Sign, ...
_CRYPTO: Mapping[KeyState, Failure] = {
    S.DISABLED: DISABLED,
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_REPLICA_DELETION,
    S.PENDING_IMPORT: PENDING_IMPORT,
    S.UNAVAILABLE: UNAVAILABLE,
    S.CREATING: CREATING,
}
# Metadata changes refused only while the key is going away.
_MUTATE: Mapping[KeyState, Failure] = {
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_REPLICA_DELETION,
}
_ENABLE_DISABLE: Mapping[KeyState, Failure] = {
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_REPLICA_DELETION,
    S.PENDING_IMPORT: PENDING_IMPORT,
    S.CREATING: CREATING,
    S.UPDATING: UPDATING,
}
_ALWAYS: Mapping[KeyState, Failure] = {}
# EnableKeyRotation / DisableKeyRotation: [1], [3], [14]. The table's [6] and [7] (imported
# material, custom key stores: UnsupportedOperationException) are checked before the state
# (services.rotation), so PendingImport and Unavailable never reach this row.
_ROTATION_SETTING: Mapping[KeyState, Failure] = {
    S.DISABLED: DISABLED,
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_DELETION,
    S.CREATING: CREATING,
}
# GetParametersForImport and ImportKeyMaterial: [8] (pending deletion of a key with imported
# material: KMSInvalidStateException), [14], and [15] for GetParametersForImport; [9] (a key
# without imported material: UnsupportedOperationException) is checked before the state.
_IMPORT: Mapping[KeyState, Failure] = {
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_DELETION,
    S.UNAVAILABLE: UNAVAILABLE,
    S.CREATING: CREATING,
}

TABLE: Mapping[str, Mapping[KeyState, Failure]] = {
    "CancelKeyDeletion": {
        s: NOT_PENDING_DELETION
        for s in S
        if s not in (S.PENDING_DELETION, S.PENDING_REPLICA_DELETION)
    },
    "CreateAlias": _MUTATE,
    "CreateGrant": {k: v for k, v in _CRYPTO.items() if k is not S.UNAVAILABLE},
    "Decrypt": _CRYPTO,
    "Decapsulate": _CRYPTO,  # inferred: not in the 2023 table, like the other crypto rows
    "DeleteAlias": _ALWAYS,
    # "OK (no effect)" in PendingImport; the key stays PendingDeletion when it is.
    "DeleteImportedKeyMaterial": {S.CREATING: CREATING, S.UPDATING: UPDATING},
    "DeriveSharedSecret": _CRYPTO,  # inferred, as Decapsulate
    "DescribeKey": _ALWAYS,
    "DisableKey": _ENABLE_DISABLE,
    "DisableKeyRotation": _ROTATION_SETTING,
    "EnableKey": _ENABLE_DISABLE,
    "EnableKeyRotation": _ROTATION_SETTING,
    "Encapsulate": _CRYPTO,  # inferred, as Decapsulate
    "Encrypt": _CRYPTO,
    "GenerateDataKey": _CRYPTO,
    "GenerateDataKeyWithoutPlaintext": _CRYPTO,
    "GenerateDataKeyPair": _CRYPTO,
    "GenerateDataKeyPairWithoutPlaintext": _CRYPTO,
    "GenerateMac": _CRYPTO,
    "GetKeyPolicy": _ALWAYS,
    # Readable in every state but Unavailable [7]; while pending deletion it reads false.
    "GetKeyRotationStatus": {S.UNAVAILABLE: UNAVAILABLE},
    "GetParametersForImport": {**_IMPORT, S.UPDATING: UPDATING},
    "GetPublicKey": _CRYPTO,
    "ImportKeyMaterial": _IMPORT,
    "ListAliases": _ALWAYS,
    "ListGrants": _ALWAYS,
    "ListKeyPolicies": _ALWAYS,
    "ListKeyRotations": _ALWAYS,  # inferred: a read of the key's materials, like ListGrants
    "ListResourceTags": _ALWAYS,
    "PutKeyPolicy": _ALWAYS,
    "ReEncrypt": _CRYPTO,
    # Unavailable is N/A: multi-Region keys cannot be in a custom key store.
    "ReplicateKey": {
        **{k: v for k, v in _CRYPTO.items() if k is not S.UNAVAILABLE},
        S.UPDATING: UPDATING,
    },
    "RetireGrant": _ALWAYS,
    "RevokeGrant": _ALWAYS,
    # Not in the 2023 table; recorded against AWS: Disabled -> DisabledException, EXTERNAL
    # without material -> "... is pending import." (shared/reference §1); the rest inferred
    # as for the cryptographic operations.
    "RotateKeyOnDemand": _CRYPTO,
    "ScheduleKeyDeletion": {
        **_MUTATE,
        S.UPDATING: UPDATING,
    },
    "Sign": _CRYPTO,
    "Verify": _CRYPTO,
    "VerifyMac": _CRYPTO,
    "TagResource": _MUTATE,
    "UntagResource": _MUTATE,
    "UpdateAlias": _MUTATE,  # [10]: applies to the destination key only
    "UpdateKeyDescription": _MUTATE,
    "UpdatePrimaryRegion": {k: v for k, v in _CRYPTO.items() if k is not S.UNAVAILABLE},
}


def check_state(operation: str, key: Key) -> None:
    """Raise AWS's error when ``operation`` is not allowed in ``key``'s state."""
    failure = TABLE[operation].get(key.state)
    if failure is not None:
        raise failure(key.arn)
