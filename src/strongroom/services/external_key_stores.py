"""Custom key stores of type EXTERNAL_KEY_STORE: what Create, Update and Connect do that
is their own.

An external key store is an account's and Region's association of an XKS proxy (its URI
endpoint and path, ``services.xks_settings`` has their rules) with the credential the KMS
signs the proxy's requests with; the secret access key is kept wrapped under the root key
where a CloudHSM store keeps its kmsuser password. Creating it, changing how the proxy is
reached and connecting it ask the proxy for its health first
(``services.xks_connections``); the proxy is asked outside any database transaction, as it
may take seconds to answer.
"""

from __future__ import annotations

from strongroom.domain.enums import ConnectionErrorCode, ConnectionState, CustomKeyStoreType
from strongroom.domain.errors import (
    CustomKeyStoreInvalidStateException,
    XksProxyUriInUseException,
)
from strongroom.domain.ids import new_custom_key_store_id
from strongroom.domain.models import CustomKeyStore, XksProxySettings
from strongroom.keystores.xks_client import XksCall
from strongroom.services.core import Core, RequestContext
from strongroom.services.store_records import (
    check_name_free,
    check_quota,
    get_store,
    record_change,
)
from strongroom.services.store_tokens import password_aad
from strongroom.services.xks_connections import check_connection, check_proxy, endpoint_of
from strongroom.services.xks_settings import (
    XksRequest,
    new_settings,
    refuse_vpc,
    updated_settings,
)
from strongroom.storage.ports import Transaction


def check_uri_free(
    tx: Transaction, ctx: RequestContext, xks: XksProxySettings, *, except_store: str | None
) -> None:
    """No other external key store of the account and Region uses the proxy's URI endpoint
    and path. Raises XksProxyUriInUseException."""
    for other in tx.custom_key_stores.in_account(ctx.account):
        if other.store_id == except_store or other.region != ctx.region or other.xks is None:
            continue
        if (other.xks.uri_endpoint, other.xks.uri_path) == (xks.uri_endpoint, xks.uri_path):
            raise XksProxyUriInUseException(
                f"The external key store proxy URI {xks.uri_endpoint}{xks.uri_path} is already "
                f"associated with the custom key store {other.store_id}: each external key "
                "store in an account and Region needs its own XksProxyUriEndpoint and "
                "XksProxyUriPath."
            )


def create_external_key_store(
    core: Core, ctx: RequestContext, name: str, xks: XksRequest
) -> CustomKeyStore:
    """CreateCustomKeyStore of type EXTERNAL_KEY_STORE: checks the members, the quota, the
    name and that no other store of the account and Region uses the proxy's URI, then asks
    the proxy for its health with the store's credential, and only then makes the store,
    DISCONNECTED. Raises ValidationException, UnsupportedOperationException
    (VPC_ENDPOINT_SERVICE), LimitExceededException, CustomKeyStoreNameInUseException,
    XksProxyUriInUseException, XksProxyUriUnreachableException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException, XksProxyInvalidResponseException."""
    settings, secret = new_settings(xks)
    store = CustomKeyStore(
        store_id=new_custom_key_store_id(),
        account=ctx.account,
        region=ctx.region,
        name=name,
        store_type=CustomKeyStoreType.EXTERNAL_KEY_STORE,
        cluster_id=None,
        trust_anchor=None,
        connection_state=ConnectionState.DISCONNECTED,
        connection_error_code=None,
        creation_date=core.clock(),
        xks=settings,
    )
    with core.store.transaction() as tx:
        _check_new_external(tx, core, ctx, store)
    # The proxy is asked outside any transaction: it may take seconds to answer.
    failure = check_proxy(
        endpoint_of(core, store, b"", secret),
        XksCall(kms_request_id=ctx.request_id, kms_operation="CreateCustomKeyStore"),
    )
    if failure is not None:
        raise failure
    wrapped = core.root_key.wrap(secret.encode(), password_aad(store.store_id))
    with core.store.transaction() as tx:
        _check_new_external(tx, core, ctx, store)  # again: another request may have won
        tx.custom_key_stores.insert(store, wrapped)
    return store


def _check_new_external(
    tx: Transaction, core: Core, ctx: RequestContext, store: CustomKeyStore
) -> None:
    assert store.xks is not None
    check_quota(tx, core, ctx)
    check_name_free(tx, ctx.account, ctx.region, store.name)
    check_uri_free(tx, ctx, store.xks, except_store=None)


def check_proxy_connection(
    core: Core, ctx: RequestContext, store: CustomKeyStore, wrapped: bytes | None
) -> ConnectionErrorCode | None:
    """Why the external key store's proxy cannot be connected to now, or None."""
    if wrapped is None or store.xks is None:
        return ConnectionErrorCode.INTERNAL_ERROR
    return check_connection(
        endpoint_of(core, store, wrapped),
        XksCall(kms_request_id=ctx.request_id, kms_operation="ConnectCustomKeyStore"),
    )


def update_external_key_store(
    core: Core, ctx: RequestContext, store: CustomKeyStore, *, new_name: str | None, xks: XksRequest
) -> None:
    """UpdateCustomKeyStore of an EXTERNAL_KEY_STORE: a new name and a new
    XksProxyAuthenticationCredential while CONNECTED or DISCONNECTED, a new
    XksProxyUriEndpoint, XksProxyUriPath or XksProxyConnectivity only while DISCONNECTED.
    When the proxy settings change, the proxy is asked for its health with the new ones
    first, and nothing changes unless it answers. Every process drops its client of the
    store. Raises CustomKeyStoreInvalidStateException, CustomKeyStoreNameInUseException,
    ValidationException, UnsupportedOperationException (VPC_ENDPOINT_SERVICE),
    XksProxyUriInUseException, XksProxyUriUnreachableException,
    XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException, XksProxyInvalidResponseException."""
    assert store.xks is not None
    refuse_vpc(xks)
    _check_external_update_state(store, xks)
    settings = updated_settings(store.xks, xks)
    secret = xks.secret_access_key
    moved = (settings.uri_endpoint, settings.uri_path) != (
        store.xks.uri_endpoint,
        store.xks.uri_path,
    )
    renamed = new_name is not None and new_name != store.name
    if xks.given():
        with core.store.transaction() as tx:
            if renamed:
                assert new_name is not None
                check_name_free(tx, ctx.account, ctx.region, new_name)
            if moved:
                check_uri_free(tx, ctx, settings, except_store=store.store_id)
            wrapped = tx.custom_key_stores.wrapped_password(store.store_id) or b""
        # The proxy is asked with the new settings, outside any transaction.
        failure = check_proxy(
            endpoint_of(core, store.evolve(xks=settings), wrapped, secret),
            XksCall(kms_request_id=ctx.request_id, kms_operation="UpdateCustomKeyStore"),
        )
        if failure is not None:
            raise failure
    with core.store.transaction() as tx:
        current = get_store(tx, ctx, store.store_id, for_update=True)
        _check_external_update_state(current, xks)
        if current.xks != store.xks:
            raise CustomKeyStoreInvalidStateException(
                f"The proxy settings of custom key store {store.store_id} changed while this "
                "request checked the new ones: try the request again."
            )
        if new_name is not None and new_name != current.name:
            check_name_free(tx, ctx.account, ctx.region, new_name)
            current = current.evolve(name=new_name)
        if moved:
            check_uri_free(tx, ctx, settings, except_store=store.store_id)
        tx.custom_key_stores.update(current.evolve(xks=settings))
        if secret is not None:
            wrapped = core.root_key.wrap(secret.encode(), password_aad(store.store_id))
            tx.custom_key_stores.set_wrapped_password(store.store_id, wrapped)
        record_change(tx, core, store.store_id)
    core.xks_clients.forget(store.store_id)


# What UpdateCustomKeyStore of an external key store may change while it is CONNECTED.
_WHILE_CONNECTED = frozenset({"XksProxyAuthenticationCredential"})


def _check_external_update_state(store: CustomKeyStore, xks: XksRequest) -> None:
    state = store.connection_state
    if state == ConnectionState.DISCONNECTED:
        return
    if state == ConnectionState.CONNECTED:
        refused = [member for member in xks.given() if member not in _WHILE_CONNECTED]
        if not refused:
            return
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store.store_id} is CONNECTED: UpdateCustomKeyStore may change "
            f"{', '.join(refused)} only while the store is DISCONNECTED; disconnect it "
            "(DisconnectCustomKeyStore) first."
        )
    raise CustomKeyStoreInvalidStateException(
        f"Custom key store {store.store_id} is {state.value}: UpdateCustomKeyStore may change "
        "nothing in that state; disconnect it (DisconnectCustomKeyStore) first."
    )
