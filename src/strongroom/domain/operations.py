"""The operation table: every operation of the KMS model, and one row of rules for each.

A row says what the operation is authorized on (an existing KMS key, or the account), whether
it runs on the hot path (in-memory caches only, on the event loop), the key states that refuse
it (AWS's key-state table, ``domain.keystate``) and the keys it takes (``domain.usage``). The
dispatch table (``handlers.registry``) maps the same names to handlers; the authorization
seam (``services.access``) and the authorization walk of the tests read ``scope``.

``Operation`` lists exactly the operations of the KMS service model botocore ships (a unit test
compares them), so an operation the model gains fails that test until it has a row here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from strongroom.domain import keystate as st
from strongroom.domain import usage as us
from strongroom.domain.enums import KeyState
from strongroom.domain.models import Key


class Operation(StrEnum):
    """The operations of the KMS API, by their wire names."""

    CANCEL_KEY_DELETION = "CancelKeyDeletion"
    CONNECT_CUSTOM_KEY_STORE = "ConnectCustomKeyStore"
    CREATE_ALIAS = "CreateAlias"
    CREATE_CUSTOM_KEY_STORE = "CreateCustomKeyStore"
    CREATE_GRANT = "CreateGrant"
    CREATE_KEY = "CreateKey"
    DECAPSULATE = "Decapsulate"
    DECRYPT = "Decrypt"
    DELETE_ALIAS = "DeleteAlias"
    DELETE_CUSTOM_KEY_STORE = "DeleteCustomKeyStore"
    DELETE_IMPORTED_KEY_MATERIAL = "DeleteImportedKeyMaterial"
    DERIVE_SHARED_SECRET = "DeriveSharedSecret"
    DESCRIBE_CUSTOM_KEY_STORES = "DescribeCustomKeyStores"
    DESCRIBE_KEY = "DescribeKey"
    DISABLE_KEY = "DisableKey"
    DISABLE_KEY_ROTATION = "DisableKeyRotation"
    DISCONNECT_CUSTOM_KEY_STORE = "DisconnectCustomKeyStore"
    ENABLE_KEY = "EnableKey"
    ENABLE_KEY_ROTATION = "EnableKeyRotation"
    ENCAPSULATE = "Encapsulate"
    ENCRYPT = "Encrypt"
    GENERATE_DATA_KEY = "GenerateDataKey"
    GENERATE_DATA_KEY_PAIR = "GenerateDataKeyPair"
    GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT = "GenerateDataKeyPairWithoutPlaintext"
    GENERATE_DATA_KEY_WITHOUT_PLAINTEXT = "GenerateDataKeyWithoutPlaintext"
    GENERATE_MAC = "GenerateMac"
    GENERATE_RANDOM = "GenerateRandom"
    GET_KEY_LAST_USAGE = "GetKeyLastUsage"
    GET_KEY_POLICY = "GetKeyPolicy"
    GET_KEY_ROTATION_STATUS = "GetKeyRotationStatus"
    GET_PARAMETERS_FOR_IMPORT = "GetParametersForImport"
    GET_PUBLIC_KEY = "GetPublicKey"
    IMPORT_KEY_MATERIAL = "ImportKeyMaterial"
    LIST_ALIASES = "ListAliases"
    LIST_GRANTS = "ListGrants"
    LIST_KEY_POLICIES = "ListKeyPolicies"
    LIST_KEY_ROTATIONS = "ListKeyRotations"
    LIST_KEYS = "ListKeys"
    LIST_RESOURCE_TAGS = "ListResourceTags"
    LIST_RETIRABLE_GRANTS = "ListRetirableGrants"
    PUT_KEY_POLICY = "PutKeyPolicy"
    RE_ENCRYPT = "ReEncrypt"
    REPLICATE_KEY = "ReplicateKey"
    RETIRE_GRANT = "RetireGrant"
    REVOKE_GRANT = "RevokeGrant"
    ROTATE_KEY_ON_DEMAND = "RotateKeyOnDemand"
    SCHEDULE_KEY_DELETION = "ScheduleKeyDeletion"
    SIGN = "Sign"
    TAG_RESOURCE = "TagResource"
    UNTAG_RESOURCE = "UntagResource"
    UPDATE_ALIAS = "UpdateAlias"
    UPDATE_CUSTOM_KEY_STORE = "UpdateCustomKeyStore"
    UPDATE_KEY_DESCRIPTION = "UpdateKeyDescription"
    UPDATE_PRIMARY_REGION = "UpdatePrimaryRegion"
    VERIFY = "Verify"
    VERIFY_MAC = "VerifyMac"


class Scope(Enum):
    """What an operation is authorized on ("AWS KMS permissions", the Resources column)."""

    KEY = "key"
    """An existing KMS key: its key policy, the caller's IAM policies and the key's grants
    decide, with the key's tags and aliases as condition keys."""
    ACCOUNT = "account"
    """No key resource (``*``): the caller's IAM policies alone decide."""


@dataclass(frozen=True, slots=True)
class OperationRule:
    """One operation's row. ``states`` maps each key state that refuses it to AWS's error
    (empty: allowed in every state; account operations have none); ``usage`` says which keys
    it takes (None: any key)."""

    scope: Scope
    states: Mapping[KeyState, st.Failure]
    usage: us.UsageRule | None = None
    hot_path: bool = False


def _key(
    states: Mapping[KeyState, st.Failure],
    usage: us.UsageRule | None = None,
    *,
    hot: bool = False,
) -> OperationRule:
    return OperationRule(Scope.KEY, states, usage, hot)


_ACCOUNT = OperationRule(Scope.ACCOUNT, st.ALWAYS)
Op = Operation

OPERATIONS: Mapping[Operation, OperationRule] = {
    Op.CANCEL_KEY_DELETION: _key(st.CANCEL_DELETION),
    Op.CONNECT_CUSTOM_KEY_STORE: _ACCOUNT,
    Op.CREATE_ALIAS: _key(st.MUTATE),
    Op.CREATE_CUSTOM_KEY_STORE: _ACCOUNT,
    Op.CREATE_GRANT: _key(st.CRYPTO_EXCEPT_UNAVAILABLE),
    Op.CREATE_KEY: _ACCOUNT,
    Op.DECAPSULATE: _key(st.CRYPTO, us.ENCAPSULATION, hot=True),  # inferred, not in the table
    Op.DECRYPT: _key(st.CRYPTO, us.ENCRYPTION, hot=True),
    Op.DELETE_ALIAS: _key(st.ALWAYS),
    Op.DELETE_CUSTOM_KEY_STORE: _ACCOUNT,
    Op.DELETE_IMPORTED_KEY_MATERIAL: _key(st.DELETE_IMPORTED),
    Op.DERIVE_SHARED_SECRET: _key(st.CRYPTO, us.KEY_AGREEMENT, hot=True),  # inferred, as above
    Op.DESCRIBE_CUSTOM_KEY_STORES: _ACCOUNT,
    Op.DESCRIBE_KEY: _key(st.ALWAYS, hot=True),
    Op.DISABLE_KEY: _key(st.ENABLE_DISABLE),
    Op.DISABLE_KEY_ROTATION: _key(st.ROTATION_SETTING),
    Op.DISCONNECT_CUSTOM_KEY_STORE: _ACCOUNT,
    Op.ENABLE_KEY: _key(st.ENABLE_DISABLE),
    Op.ENABLE_KEY_ROTATION: _key(st.ROTATION_SETTING),
    Op.ENCAPSULATE: _key(st.CRYPTO, us.ENCAPSULATION, hot=True),  # inferred, as Decapsulate
    Op.ENCRYPT: _key(st.CRYPTO, us.ENCRYPTION, hot=True),
    Op.GENERATE_DATA_KEY: _key(st.CRYPTO, us.DATA_KEY, hot=True),
    # GenerateDataKeyPair stays off the event loop: making an RSA key pair takes up to 1 s.
    Op.GENERATE_DATA_KEY_PAIR: _key(st.CRYPTO, us.DATA_KEY),
    Op.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT: _key(st.CRYPTO, us.DATA_KEY),
    Op.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT: _key(st.CRYPTO, us.DATA_KEY, hot=True),
    Op.GENERATE_MAC: _key(st.CRYPTO, us.MAC, hot=True),
    Op.GENERATE_RANDOM: OperationRule(Scope.ACCOUNT, st.ALWAYS, hot_path=True),
    # Its documented errors have no KMSInvalidStateException: every state may ask.
    Op.GET_KEY_LAST_USAGE: _key(st.ALWAYS),
    Op.GET_KEY_POLICY: _key(st.ALWAYS),
    # Readable in every state but Unavailable [7]; while pending deletion it reads false.
    Op.GET_KEY_ROTATION_STATUS: _key({KeyState.UNAVAILABLE: st.UNAVAILABLE}),
    Op.GET_PARAMETERS_FOR_IMPORT: _key(st.GET_PARAMETERS_FOR_IMPORT),
    Op.GET_PUBLIC_KEY: _key(st.CRYPTO, us.PUBLIC_KEY, hot=True),
    Op.IMPORT_KEY_MATERIAL: _key(st.IMPORT),
    Op.LIST_ALIASES: _ACCOUNT,
    Op.LIST_GRANTS: _key(st.ALWAYS),
    Op.LIST_KEY_POLICIES: _key(st.ALWAYS),
    Op.LIST_KEY_ROTATIONS: _key(st.ALWAYS),  # inferred: a read of the key's materials
    Op.LIST_KEYS: _ACCOUNT,
    Op.LIST_RESOURCE_TAGS: _key(st.ALWAYS),
    # The resource is a principal of the caller's account, not a key.
    Op.LIST_RETIRABLE_GRANTS: _ACCOUNT,
    Op.PUT_KEY_POLICY: _key(st.ALWAYS),
    Op.RE_ENCRYPT: _key(st.CRYPTO, us.ENCRYPTION, hot=True),
    Op.REPLICATE_KEY: _key(st.REPLICATE),
    Op.RETIRE_GRANT: _key(st.ALWAYS),
    Op.REVOKE_GRANT: _key(st.ALWAYS),
    # Not in the 2023 table; recorded against AWS: Disabled -> DisabledException, EXTERNAL
    # without material -> "... is pending import." (shared/reference §1); the rest inferred
    # as for the cryptographic operations. Checked before the key spec (services.rotation):
    # a disabled RSA key gets DisabledException on AWS, not UnsupportedOperationException.
    Op.ROTATE_KEY_ON_DEMAND: _key(st.CRYPTO),
    Op.SCHEDULE_KEY_DELETION: _key(st.SCHEDULE_DELETION),
    Op.SIGN: _key(st.CRYPTO, us.SIGNING, hot=True),
    Op.TAG_RESOURCE: _key(st.MUTATE),
    Op.UNTAG_RESOURCE: _key(st.MUTATE),
    Op.UPDATE_ALIAS: _key(st.MUTATE),  # [10]: applies to the destination key only
    Op.UPDATE_CUSTOM_KEY_STORE: _ACCOUNT,
    Op.UPDATE_KEY_DESCRIPTION: _key(st.MUTATE),
    Op.UPDATE_PRIMARY_REGION: _key(st.CRYPTO_EXCEPT_UNAVAILABLE),
    Op.VERIFY: _key(st.CRYPTO, us.SIGNING, hot=True),
    Op.VERIFY_MAC: _key(st.CRYPTO, us.MAC, hot=True),
}

TRACKED_USES = frozenset(
    {
        Op.DECRYPT,
        Op.DERIVE_SHARED_SECRET,
        Op.ENCRYPT,
        Op.GENERATE_DATA_KEY,
        Op.GENERATE_DATA_KEY_PAIR,
        Op.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT,
        Op.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT,
        Op.GENERATE_MAC,
        Op.RE_ENCRYPT,
        Op.SIGN,
        Op.VERIFY,
        Op.VERIFY_MAC,
        Op.ENCAPSULATE,
        Op.DECAPSULATE,
    }
)
"""The operations whose success counts as a key's last use: the model's enum
KeyLastUsageTrackingOperation (a unit test compares them)."""

CHANGES_STATE = frozenset(
    {
        Op.CANCEL_KEY_DELETION,
        Op.CONNECT_CUSTOM_KEY_STORE,
        Op.CREATE_ALIAS,
        Op.CREATE_CUSTOM_KEY_STORE,
        Op.CREATE_GRANT,
        Op.CREATE_KEY,
        Op.DELETE_ALIAS,
        Op.DELETE_CUSTOM_KEY_STORE,
        Op.DELETE_IMPORTED_KEY_MATERIAL,
        Op.DISABLE_KEY,
        Op.DISABLE_KEY_ROTATION,
        Op.DISCONNECT_CUSTOM_KEY_STORE,
        Op.ENABLE_KEY,
        Op.ENABLE_KEY_ROTATION,
        Op.GET_PARAMETERS_FOR_IMPORT,  # stores the import token and its wrapping key
        Op.IMPORT_KEY_MATERIAL,
        Op.PUT_KEY_POLICY,
        Op.REPLICATE_KEY,
        Op.RETIRE_GRANT,
        Op.REVOKE_GRANT,
        Op.ROTATE_KEY_ON_DEMAND,
        Op.SCHEDULE_KEY_DELETION,
        Op.TAG_RESOURCE,
        Op.UNTAG_RESOURCE,
        Op.UPDATE_ALIAS,
        Op.UPDATE_CUSTOM_KEY_STORE,
        Op.UPDATE_KEY_DESCRIPTION,
        Op.UPDATE_PRIMARY_REGION,
    }
)
"""Operations that change state (a key, alias, grant, policy, tag, key store or import
token): the pipeline makes their intent durable in the audit trail before it runs them
(``audit/events.py``, ``build_intent``). The others only read, or use a key (its last use,
``GetKeyLastUsage``, is a note, not a change that needs one). None is on the hot path."""

HOT_PATH = frozenset(op for op, rule in OPERATIONS.items() if rule.hot_path)
"""Operations that, in steady state, touch only in-memory caches: they run on the event
loop itself; the rest run in a thread pool so database I/O never blocks the loop."""


def check_state(operation: Operation, key: Key) -> None:
    """Raise AWS's error when ``operation`` is not allowed in ``key``'s state."""
    failure = OPERATIONS[operation].states.get(key.state)
    if failure is not None:
        raise failure(key.arn)


def check_usage(operation: Operation, key: Key) -> None:
    """Raise AWS's error when ``key`` cannot do ``operation`` (``usage.UsageRule.check``);
    nothing for operations that take any key."""
    rule = OPERATIONS[operation].usage
    if rule is not None:
        rule.check(operation, key)
