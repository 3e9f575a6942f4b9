"""KMS keys in external key stores: what CreateKey asks of the external key (XksKeyId).

A key in an external key store (origin EXTERNAL_KEY_STORE) is associated with one external
key in the key manager behind its store's proxy; the key's record names it
(``Key.xks_key_id``) and its material of its own is made like any symmetric key's
(``keystores.external`` explains the double encryption). CreateKey asks the proxy for the
external key's metadata first (GetKeyMetadata, requestMetadata ``kmsOperation`` CreateKey):
it must be an AES-256 key that can encrypt and decrypt and is enabled (the XKS Proxy API
specification, GetKeyMetadata, "KMS Considerations"). Two keys of one store never share an
external key (XksKeyAlreadyInUseException; a unique index on (custom_key_store_id,
xks_key_id) backs the check).
"""

from __future__ import annotations

from strongroom.domain.errors import (
    KMSInvalidStateException,
    XksKeyAlreadyInUseException,
    XksKeyInvalidConfigurationException,
)
from strongroom.keystores.xks_client import XksCall, XksError
from strongroom.keystores.xks_errors import for_create_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.custom_key_store_keys import not_connected
from strongroom.services.xks_connections import connected_client

KEY_SPEC = "AES_256"
USAGES = ("ENCRYPT", "DECRYPT")
ENABLED = "ENABLED"


def check_external_key(core: Core, ctx: RequestContext, store_id: str, xks_key_id: str) -> None:
    """That the external key ``xks_key_id`` of the CONNECTED external key store ``store_id``
    can back a new KMS key. Raises XksKeyAlreadyInUseException, XksKeyNotFoundException,
    XksKeyInvalidConfigurationException, CustomKeyStoreInvalidStateException (the store is
    not connected, or its proxy fails: ``keystores.xks_errors.for_create_key``),
    KMSInvalidStateException (the proxy denies access), DependencyTimeoutException."""
    with core.store.transaction() as tx:
        user = tx.custom_key_stores.key_using(store_id, xks_key_id)
    if user is not None:
        raise XksKeyAlreadyInUseException(
            f"The external key {xks_key_id} is already associated with the KMS key {user} "
            f"in custom key store {store_id}: each KMS key in an external key store must be "
            "associated with a different external key."
        )
    try:
        client = connected_client(core, store_id)
    except KMSInvalidStateException:
        raise not_connected(store_id) from None
    call = XksCall(
        kms_request_id=ctx.request_id,
        kms_operation="CreateKey",
        aws_principal_arn=ctx.caller.principal.arn,
    )
    try:
        metadata = client.key_metadata(xks_key_id, call)
    except XksError as e:
        raise for_create_key(e) from None
    problems = []
    if metadata.key_spec != KEY_SPEC:
        problems.append(f"its key spec is {metadata.key_spec}, not {KEY_SPEC}")
    missing = [usage for usage in USAGES if usage not in metadata.key_usage]
    if missing:
        problems.append(f"it cannot {' or '.join(u.lower() for u in missing)}")
    if metadata.key_status != ENABLED:
        problems.append(f"its status is {metadata.key_status}, not {ENABLED}")
    if problems:
        raise XksKeyInvalidConfigurationException(
            f"The external key {xks_key_id} cannot back a KMS key: {'; '.join(problems)}. "
            "It must be an AES-256 key that is enabled and can encrypt and decrypt."
        )
