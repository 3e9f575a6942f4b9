"""AWS's key-state table, as data: the rows that operations share (``domain.operations``
gives each operation its row).

Source: AWS KMS Developer Guide, "Key states of AWS KMS keys" (key-state.md). A row maps the
states in which an operation fails to the footnote that says how; a state that is absent
means the operation succeeds there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from strongroom.domain.enums import KeyState
from strongroom.domain.errors import DisabledException, KmsError, KMSInvalidStateException

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
CRYPTO: Mapping[KeyState, Failure] = {
    S.DISABLED: DISABLED,
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_REPLICA_DELETION,
    S.PENDING_IMPORT: PENDING_IMPORT,
    S.UNAVAILABLE: UNAVAILABLE,
    S.CREATING: CREATING,
}
# CreateGrant, UpdatePrimaryRegion: as the cryptographic operations; Unavailable is N/A.
CRYPTO_EXCEPT_UNAVAILABLE: Mapping[KeyState, Failure] = {
    k: v for k, v in CRYPTO.items() if k is not S.UNAVAILABLE
}
# ReplicateKey: multi-Region keys cannot be in a custom key store (Unavailable is N/A).
REPLICATE: Mapping[KeyState, Failure] = {**CRYPTO_EXCEPT_UNAVAILABLE, S.UPDATING: UPDATING}
# Metadata changes refused only while the key is going away.
MUTATE: Mapping[KeyState, Failure] = {
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_REPLICA_DELETION,
}
SCHEDULE_DELETION: Mapping[KeyState, Failure] = {**MUTATE, S.UPDATING: UPDATING}
CANCEL_DELETION: Mapping[KeyState, Failure] = {
    s: NOT_PENDING_DELETION for s in S if s not in (S.PENDING_DELETION, S.PENDING_REPLICA_DELETION)
}
ENABLE_DISABLE: Mapping[KeyState, Failure] = {
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_REPLICA_DELETION,
    S.PENDING_IMPORT: PENDING_IMPORT,
    S.CREATING: CREATING,
    S.UPDATING: UPDATING,
}
ALWAYS: Mapping[KeyState, Failure] = {}
# EnableKeyRotation / DisableKeyRotation: [1], [3], [14]. The table's [6] and [7] (imported
# material, custom key stores: UnsupportedOperationException) are checked before the state
# (services.rotation), so PendingImport and Unavailable never reach this row.
ROTATION_SETTING: Mapping[KeyState, Failure] = {
    S.DISABLED: DISABLED,
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_DELETION,
    S.CREATING: CREATING,
}
# GetParametersForImport and ImportKeyMaterial: [8] (pending deletion of a key with imported
# material: KMSInvalidStateException), [14], and [15] for GetParametersForImport; [9] (a key
# without imported material: UnsupportedOperationException) is checked before the state.
IMPORT: Mapping[KeyState, Failure] = {
    S.PENDING_DELETION: PENDING_DELETION,
    S.PENDING_REPLICA_DELETION: PENDING_DELETION,
    S.UNAVAILABLE: UNAVAILABLE,
    S.CREATING: CREATING,
}
GET_PARAMETERS_FOR_IMPORT: Mapping[KeyState, Failure] = {**IMPORT, S.UPDATING: UPDATING}
# DeleteImportedKeyMaterial: "OK (no effect)" in PendingImport; the key stays PendingDeletion
# when it is.
DELETE_IMPORTED: Mapping[KeyState, Failure] = {S.CREATING: CREATING, S.UPDATING: UPDATING}
