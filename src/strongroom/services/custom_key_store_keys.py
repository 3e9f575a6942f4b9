"""KMS keys in custom key stores of type AWS_CLOUDHSM: what CreateKey checks, when such a key
is Unavailable, and the cluster DescribeKey names.

The key's material is in its store's token (``keystores.cloudhsm``); its record names the
store (``Key.custom_key_store_id``). A key's KeyState is its record's, except that a key
whose store is not CONNECTED, or whose token is gone, shows ``Unavailable`` (unless it is
PendingDeletion, which it stays: key-state table footnote [13]) and every use of it gives
KMSInvalidStateException "<key ARN> is unavailable." ([11]); connecting the store again
brings its state back. The record keeps its own state all the while, so EnableKey and
DisableKey succeed and take effect when the key is available again ([12]). That rule is
``services.loading.with_availability``, applied wherever a key is loaded.
"""

from __future__ import annotations

from strongroom.domain.enums import (
    ConnectionState,
    CustomKeyStoreType,
    KeySpec,
    KeyUsage,
    Origin,
)
from strongroom.domain.errors import (
    CustomKeyStoreInvalidStateException,
    CustomKeyStoreNotFoundException,
    KMSInvalidStateException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.models import Key
from strongroom.services.core import Core, RequestContext
from strongroom.services.custom_key_stores import store_for_new_key, store_of
from strongroom.services.store_tokens import run_in_store

_STORE_ORIGINS = {
    Origin.AWS_CLOUDHSM: CustomKeyStoreType.AWS_CLOUDHSM,
    Origin.EXTERNAL_KEY_STORE: CustomKeyStoreType.EXTERNAL_KEY_STORE,
}
"""The origin of the keys of each type of custom key store."""


def check_origin(origin: Origin, custom_key_store_id: str | None, xks_key_id: str | None) -> None:
    """CreateKey's Origin, CustomKeyStoreId and XksKeyId go together: AWS_CLOUDHSM needs a
    store, EXTERNAL_KEY_STORE a store and an external key, a store needs one of them
    (CreateKey documentation, Origin: "To create a KMS key in an CloudHSM key store ... set
    this value to AWS_CLOUDHSM. You must also use the CustomKeyStoreId parameter"; "To
    create a KMS key in an external key store, set this value to EXTERNAL_KEY_STORE. You
    must also use the CustomKeyStoreId parameter ... and the XksKeyId parameter").
    Raises ValidationException."""
    if origin in _STORE_ORIGINS and custom_key_store_id is None:
        raise ValidationException(
            f"CustomKeyStoreId is required when Origin is {origin}: it names the custom key "
            "store the key is created in."
        )
    if custom_key_store_id is not None and origin not in _STORE_ORIGINS:
        raise ValidationException(
            "Origin must be AWS_CLOUDHSM or EXTERNAL_KEY_STORE when CustomKeyStoreId is "
            f"specified (it is {origin})."
        )
    if origin is Origin.EXTERNAL_KEY_STORE and xks_key_id is None:
        raise ValidationException(
            "XksKeyId is required when Origin is EXTERNAL_KEY_STORE: it names the external "
            "key, in the store's external key manager, that the KMS key is associated with."
        )
    if xks_key_id is not None and origin is not Origin.EXTERNAL_KEY_STORE:
        raise ValidationException(
            f"XksKeyId is valid only when Origin is EXTERNAL_KEY_STORE (it is {origin})."
        )


def check_new_key(
    core: Core,
    ctx: RequestContext,
    store_id: str,
    *,
    origin: Origin,
    key_spec: KeySpec,
    key_usage: KeyUsage,
    multi_region: bool,
) -> None:
    """What CreateKey with a CustomKeyStoreId needs besides the origin: a symmetric
    encryption key ("This parameter is valid only for symmetric encryption KMS keys in a
    single Region", CreateKey's CustomKeyStoreId documentation) in a store of the caller's
    account and Region that is CONNECTED, of the type ``origin`` names, and (AWS_CLOUDHSM)
    whose cluster has two HSMs (``custom_key_stores.store_for_new_key``). Raises
    UnsupportedOperationException (also for a store of the other type),
    CustomKeyStoreNotFoundException, CustomKeyStoreInvalidStateException,
    CloudHsmClusterInvalidConfigurationException."""
    if key_spec is not KeySpec.SYMMETRIC_DEFAULT or key_usage is not KeyUsage.ENCRYPT_DECRYPT:
        raise UnsupportedOperationException(
            f"KeySpec {key_spec} with KeyUsage {key_usage} is not valid in a custom key store: "
            "only symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT) can be "
            "created there."
        )
    if multi_region:
        raise UnsupportedOperationException(
            "MultiRegion keys cannot be created in a custom key store."
        )
    store_for_new_key(core, ctx, store_id, _STORE_ORIGINS[origin])


def not_connected(
    store_id: str,
    state: ConnectionState | None = None,
    rule: str = "CreateKey is valid only in a",
) -> CustomKeyStoreInvalidStateException:
    """An operation (CreateKey unless ``rule`` says another) in a store that is not
    connected (or whose token or proxy cannot be reached)."""
    said = "" if state is None else f" (its ConnectionState is {state.value})"
    return CustomKeyStoreInvalidStateException(
        f"Custom key store {store_id} is not connected{said}: {rule} custom key store whose "
        "ConnectionState is CONNECTED."
    )


def cluster_id_of(core: Core, key: Key) -> str | None:
    """The CloudHsmClusterId DescribeKey shows for a key in a custom key store of type
    AWS_CLOUDHSM: its store's cluster now (UpdateCustomKeyStore may move a store to a
    related cluster)."""
    if key.custom_key_store_id is None or key.origin is not Origin.AWS_CLOUDHSM:
        return None
    store = store_of(core, key.custom_key_store_id)
    return None if store is None else store.cluster_id


def random_in_store(core: Core, ctx: RequestContext, store_id: str, number_of_bytes: int) -> bytes:
    """GenerateRandom with a CustomKeyStoreId: the bytes come from the store's token
    (C_GenerateRandom), as AWS makes them in the CloudHSM cluster of the store. Raises
    CustomKeyStoreNotFoundException, CustomKeyStoreInvalidStateException (not connected, or
    its token cannot be reached), UnsupportedOperationException (an external key store)."""
    store = store_of(core, store_id)
    if store is None or (store.account, store.region) != (ctx.account, ctx.region):
        raise CustomKeyStoreNotFoundException(
            f"Custom key store {store_id} does not exist in this account and Region."
        )
    if store.store_type is not CustomKeyStoreType.AWS_CLOUDHSM:
        raise UnsupportedOperationException(
            "GenerateRandom does not take the ID of an external key store."
        )
    if store.connection_state is not ConnectionState.CONNECTED:
        raise not_connected(store_id, store.connection_state, _RANDOM_RULE)
    try:
        random: bytes = run_in_store(
            core, store_id, lambda s: s.generate_random(number_of_bytes * 8)
        )
    except KMSInvalidStateException:
        raise not_connected(store_id, rule=_RANDOM_RULE) from None
    return random


_RANDOM_RULE = "GenerateRandom can use only a"
