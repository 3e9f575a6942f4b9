"""Custom key stores: AWS_CLOUDHSM on PKCS#11 tokens and the clusters they use, and
EXTERNAL_KEY_STORE reached through an XKS proxy.

A "cluster" is a PKCS#11 token an operator registered for an account (``strongroom admin
hsm-cluster``); a custom key store is an account's and Region's association of one
cluster with the password of its ``kmsuser`` (the token's user PIN), kept wrapped under
the root key. Connecting logs in to the token; its state, in the database, is what every
process and node reads (``services.store_tokens``). The rules follow the AWS API
reference of each operation and its errors (botocore's KMS model documentation); AWS
does not publish the message texts of these errors, so the messages name the store,
the cluster and the rule.

What is an external key store's own (its proxy, the health checks) is in
``services.external_key_stores``; this module has the operations of both types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.crypto.trust_anchor import certificate_der, same_trust_anchor
from strongroom.domain.enums import ConnectionErrorCode, ConnectionState, CustomKeyStoreType
from strongroom.domain.errors import (
    CloudHsmClusterInUseException,
    CloudHsmClusterInvalidConfigurationException,
    CloudHsmClusterNotActiveException,
    CloudHsmClusterNotFoundException,
    CloudHsmClusterNotRelatedException,
    CustomKeyStoreHasCMKsException,
    CustomKeyStoreInvalidStateException,
    CustomKeyStoreNotFoundException,
    IncorrectTrustAnchorException,
    KeyStoreError,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.ids import is_custom_key_store_id, new_custom_key_store_id
from strongroom.domain.models import CustomKeyStore, HsmCluster
from strongroom.keystores.pkcs11_token import PinIncorrect, Token, TokenUnavailable
from strongroom.services.access import authorize_account
from strongroom.services.core import Core, RequestContext
from strongroom.services.external_key_stores import (
    check_proxy_connection,
    create_external_key_store,
    update_external_key_store,
)
from strongroom.services.paging import decode_moment_marker, encode_moment_marker, next_page
from strongroom.services.store_records import (
    check_name_free,
    check_quota,
    get_store,
    record_change,
)
from strongroom.services.store_tokens import open_token, password_aad
from strongroom.services.xks_settings import XksRequest, refuse_members, require_members
from strongroom.storage.ports import Transaction

MIN_HSMS = 2
"""HSMs a cluster needs for CreateCustomKeyStore and UpdateCustomKeyStore ("at least two
active HSMs, each in a different Availability Zone")."""

_MARKER_KIND = "customKeyStores"


@dataclass(frozen=True, slots=True)
class CloudHsmSettings:
    """What CreateCustomKeyStore takes for an AWS_CLOUDHSM store."""

    cluster_id: str | None
    trust_anchor: str | None
    password: str | None = field(repr=False)

    def given(self) -> list[str]:
        """The AWS names of the members the request has."""
        members = {
            "CloudHsmClusterId": self.cluster_id,
            "TrustAnchorCertificate": self.trust_anchor,
            "KeyStorePassword": self.password,
        }
        return [name for name, value in members.items() if value is not None]


NO_CLOUDHSM = CloudHsmSettings(None, None, None)
NO_XKS = XksRequest()


# -- reading ------------------------------------------------------------------------------


def _cluster(tx: Transaction, account: str, cluster_id: str) -> HsmCluster:
    """The account's cluster ``cluster_id``; CloudHsmClusterNotFoundException otherwise."""
    cluster = tx.hsm_clusters.get(cluster_id)
    if cluster is None or cluster.account != account:
        raise CloudHsmClusterNotFoundException(
            f"Cannot find the CloudHSM cluster {cluster_id} in this account."
        )
    return cluster


def _check_cluster_fit(cluster: HsmCluster) -> None:
    """A cluster for a new or moved store: active (it has an HSM) and with two HSMs."""
    if cluster.hsm_count < 1:
        raise CloudHsmClusterNotActiveException(
            f"The CloudHSM cluster {cluster.cluster_id} is not active: it has no HSMs."
        )
    if cluster.hsm_count < MIN_HSMS:
        raise CloudHsmClusterInvalidConfigurationException(
            f"The CloudHSM cluster {cluster.cluster_id} has {cluster.hsm_count} HSM; a custom "
            f"key store needs a cluster with at least {MIN_HSMS} active HSMs."
        )


def _check_cluster_free(
    tx: Transaction, account: str, cluster: HsmCluster, *, except_store: str | None = None
) -> None:
    """No other store of the account uses the cluster or a cluster of its backup history
    (the same trust anchor). Raises CloudHsmClusterInUseException."""
    for other in tx.custom_key_stores.in_account(account):
        if other.store_id == except_store:
            continue
        if other.cluster_id == cluster.cluster_id:
            raise CloudHsmClusterInUseException(
                f"The CloudHSM cluster {cluster.cluster_id} is already associated with the "
                f"custom key store {other.store_id}."
            )
        if same_trust_anchor(other.trust_anchor, cluster.trust_anchor):
            raise CloudHsmClusterInUseException(
                f"The CloudHSM cluster {cluster.cluster_id} shares a backup history (its "
                f"trust anchor certificate) with the cluster {other.cluster_id} of the "
                f"custom key store {other.store_id}."
            )


# -- the operations -----------------------------------------------------------------------


def create_custom_key_store(
    core: Core,
    ctx: RequestContext,
    name: str,
    store_type: CustomKeyStoreType,
    cloudhsm: CloudHsmSettings,
    xks: XksRequest = NO_XKS,
) -> CustomKeyStore:
    """CreateCustomKeyStore of either type (``xks``: an EXTERNAL_KEY_STORE's members). Raises
    ValidationException (a member missing, or one of the other type), LimitExceededException,
    CustomKeyStoreNameInUseException; for AWS_CLOUDHSM: CloudHsmClusterNotFoundException,
    CloudHsmClusterNotActiveException, CloudHsmClusterInvalidConfigurationException,
    IncorrectTrustAnchorException, CloudHsmClusterInUseException; for EXTERNAL_KEY_STORE
    (``create_external_key_store``): UnsupportedOperationException (VPC_ENDPOINT_SERVICE),
    XksProxyUriInUseException and the proxy check's errors."""
    authorize_account(core, ctx, "CreateCustomKeyStore")
    if store_type is CustomKeyStoreType.EXTERNAL_KEY_STORE:
        refuse_members(cloudhsm.given(), CustomKeyStoreType.EXTERNAL_KEY_STORE.value)
        return create_external_key_store(core, ctx, name, xks)
    refuse_members(xks.given(), CustomKeyStoreType.AWS_CLOUDHSM.value)
    require_members(
        [
            ("CloudHsmClusterId", cloudhsm.cluster_id),
            ("TrustAnchorCertificate", cloudhsm.trust_anchor),
            ("KeyStorePassword", cloudhsm.password),
        ],
        CustomKeyStoreType.AWS_CLOUDHSM.value,
    )
    assert cloudhsm.cluster_id and cloudhsm.trust_anchor and cloudhsm.password
    store = CustomKeyStore(
        store_id=new_custom_key_store_id(),
        account=ctx.account,
        region=ctx.region,
        name=name,
        store_type=store_type,
        cluster_id=cloudhsm.cluster_id,
        trust_anchor=cloudhsm.trust_anchor,
        connection_state=ConnectionState.DISCONNECTED,
        connection_error_code=None,
        creation_date=core.clock(),
    )
    wrapped = core.root_key.wrap(cloudhsm.password.encode(), password_aad(store.store_id))
    with core.store.transaction() as tx:
        check_quota(tx, core, ctx)
        check_name_free(tx, ctx.account, ctx.region, name)
        cluster = _cluster(tx, ctx.account, cloudhsm.cluster_id)
        _check_cluster_fit(cluster)
        if certificate_der(cloudhsm.trust_anchor) is None or not same_trust_anchor(
            cloudhsm.trust_anchor, cluster.trust_anchor
        ):
            raise IncorrectTrustAnchorException(
                f"The trust anchor certificate in the request is not the trust anchor "
                f"certificate of the CloudHSM cluster {cluster.cluster_id}."
            )
        _check_cluster_free(tx, ctx.account, cluster)
        tx.custom_key_stores.insert(store, wrapped)
    return store


def describe_custom_key_stores(
    core: Core,
    ctx: RequestContext,
    *,
    store_id: str | None,
    name: str | None,
    limit: int,
    marker: str | None,
) -> tuple[list[CustomKeyStore], str | None]:
    """DescribeCustomKeyStores: one store by id or name, or a page of the account's and
    Region's stores in creation order. Raises CustomKeyStoreNotFoundException,
    InvalidMarkerException, ValidationException (both id and name)."""
    authorize_account(core, ctx, "DescribeCustomKeyStores")
    if store_id is not None and name is not None:
        raise ValidationException(
            "Specify either CustomKeyStoreId or CustomKeyStoreName, but not both."
        )
    after = None
    if marker is not None:
        after = decode_moment_marker(marker, _MARKER_KIND, is_custom_key_store_id)
    with core.store.transaction() as tx:
        if store_id is not None:
            return [get_store(tx, ctx, store_id)], None
        if name is not None:
            found = tx.custom_key_stores.get_by_name(ctx.account, ctx.region, name)
            if found is None:
                raise CustomKeyStoreNotFoundException(
                    f"There is no custom key store named {name} in this account and Region."
                )
            return [found], None
        stores = tx.custom_key_stores.list(ctx.account, ctx.region, after=after, limit=limit + 1)
    return next_page(
        stores,
        limit,
        lambda s: encode_moment_marker(_MARKER_KIND, s.creation_date, s.store_id),
    )


def connect_custom_key_store(core: Core, ctx: RequestContext, store_id: str) -> CustomKeyStore:
    """ConnectCustomKeyStore: CONNECTING, then, for an AWS_CLOUDHSM store, a login to the
    cluster's token with the kmsuser password, for an EXTERNAL_KEY_STORE, a health check of
    its proxy: CONNECTED, or FAILED with a ConnectionErrorCode (INVALID_CREDENTIALS,
    CLUSTER_NOT_FOUND, NETWORK_ERRORS; XKS_PROXY_NOT_REACHABLE, XKS_PROXY_TIMED_OUT, ...).
    A store CONNECTED or CONNECTING already stays so. Raises
    CustomKeyStoreNotFoundException, CustomKeyStoreInvalidStateException (DISCONNECTING,
    FAILED), CloudHsmClusterNotActiveException."""
    authorize_account(core, ctx, "ConnectCustomKeyStore")
    with core.store.transaction() as tx:
        store = get_store(tx, ctx, store_id, for_update=True)
        state = store.connection_state
        if state in (ConnectionState.DISCONNECTING, ConnectionState.FAILED):
            raise CustomKeyStoreInvalidStateException(
                f"Custom key store {store_id} is {state.value}: ConnectCustomKeyStore is not "
                "valid in that state. To connect a store that FAILED, disconnect it first."
            )
        if state in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
            return store
        cluster = tx.hsm_clusters.get(store.cluster_id)
        if cluster is not None and cluster.hsm_count < 1:
            raise CloudHsmClusterNotActiveException(
                f"The CloudHSM cluster {cluster.cluster_id} is not active: it has no HSMs."
            )
        wrapped = tx.custom_key_stores.wrapped_password(store_id)
        store = store.evolve(connection_state=ConnectionState.CONNECTING)
        tx.custom_key_stores.update(store)
        record_change(tx, core, store_id)
    token = None
    if store.store_type is CustomKeyStoreType.EXTERNAL_KEY_STORE:
        core.xks_clients.forget(store_id)
        error = check_proxy_connection(core, ctx, store, wrapped)
    else:
        # This process may still hold a session of the store from before a disconnection
        # another process made: close it first, so the new login is the token's only one.
        with core.store_tokens.opening:
            core.store_tokens.forget(store_id)
            generation = core.store_tokens.generation
            error, token = _log_in(core, store, cluster, wrapped)
    with core.store.transaction() as tx:
        current = get_store(tx, ctx, store_id, for_update=True)
        if current.connection_state == ConnectionState.CONNECTING:
            current = current.evolve(
                connection_state=ConnectionState.FAILED if error else ConnectionState.CONNECTED,
                connection_error_code=error,
            )
            tx.custom_key_stores.update(current)
            record_change(tx, core, store_id)
        # else: disconnected (or deleted) meanwhile, which wins
    if token is not None:
        if current.connection_state == ConnectionState.CONNECTED:
            # Keep the session: this process serves the store's keys with it.
            core.store_tokens.put(store_id, token, generation)
        else:
            token.close()
    return current


def _log_in(
    core: Core, store: CustomKeyStore, cluster: HsmCluster | None, wrapped: bytes | None
) -> tuple[ConnectionErrorCode | None, Token | None]:
    """Log in to the store's token: (None, the logged-in token) when it worked, else (why
    it failed, None)."""
    if cluster is None or wrapped is None:
        return ConnectionErrorCode.CLUSTER_NOT_FOUND, None
    password = core.root_key.unwrap(wrapped, password_aad(store.store_id)).decode()
    try:
        token = open_token(core, cluster, password)
        token.check()
    except PinIncorrect:
        return ConnectionErrorCode.INVALID_CREDENTIALS, None
    except TokenUnavailable:
        return ConnectionErrorCode.CLUSTER_NOT_FOUND, None
    except KeyStoreError:  # the module cannot be loaded: the cluster cannot be reached
        return ConnectionErrorCode.NETWORK_ERRORS, None
    return None, token


def disconnect_custom_key_store(core: Core, ctx: RequestContext, store_id: str) -> None:
    """DisconnectCustomKeyStore: DISCONNECTED, and every process logs out of the token
    within one change poll. Raises CustomKeyStoreNotFoundException,
    CustomKeyStoreInvalidStateException (DISCONNECTED, DISCONNECTING)."""
    authorize_account(core, ctx, "DisconnectCustomKeyStore")
    with core.store.transaction() as tx:
        store = get_store(tx, ctx, store_id, for_update=True)
        state = store.connection_state
        if state in (ConnectionState.DISCONNECTED, ConnectionState.DISCONNECTING):
            raise CustomKeyStoreInvalidStateException(
                f"Custom key store {store_id} is {state.value}: DisconnectCustomKeyStore is "
                "not valid in that state."
            )
        tx.custom_key_stores.update(
            store.evolve(connection_state=ConnectionState.DISCONNECTED, connection_error_code=None)
        )
        record_change(tx, core, store_id)
    core.store_tokens.forget(store_id)
    core.xks_clients.forget(store_id)


def update_custom_key_store(
    core: Core,
    ctx: RequestContext,
    store_id: str,
    *,
    new_name: str | None,
    password: str | None,
    cluster_id: str | None,
    xks: XksRequest = NO_XKS,
) -> None:
    """UpdateCustomKeyStore: for an AWS_CLOUDHSM store, a new name (CONNECTED or
    DISCONNECTED), a new kmsuser password or a related cluster (same trust anchor;
    DISCONNECTED only); for an EXTERNAL_KEY_STORE, ``update_external_key_store``. Raises
    CustomKeyStoreNotFoundException, CustomKeyStoreInvalidStateException,
    CustomKeyStoreNameInUseException, ValidationException (a member of the other type),
    CloudHsmClusterNotFoundException, CloudHsmClusterNotRelatedException,
    CloudHsmClusterNotActiveException, CloudHsmClusterInvalidConfigurationException,
    CloudHsmClusterInUseException, and the errors of ``update_external_key_store``."""
    authorize_account(core, ctx, "UpdateCustomKeyStore")
    with core.store.transaction() as tx:
        found = get_store(tx, ctx, store_id)
    if found.store_type is CustomKeyStoreType.EXTERNAL_KEY_STORE:
        cloudhsm = CloudHsmSettings(cluster_id=cluster_id, trust_anchor=None, password=password)
        refuse_members(cloudhsm.given(), CustomKeyStoreType.EXTERNAL_KEY_STORE.value)
        update_external_key_store(core, ctx, found, new_name=new_name, xks=xks)
        return
    refuse_members(xks.given(), CustomKeyStoreType.AWS_CLOUDHSM.value)
    with core.store.transaction() as tx:
        store = get_store(tx, ctx, store_id, for_update=True)
        _check_update_state(store, name_only=password is None and cluster_id is None)
        if new_name is not None and new_name != store.name:
            check_name_free(tx, ctx.account, ctx.region, new_name)
            store = store.evolve(name=new_name)
        if cluster_id is not None and cluster_id != store.cluster_id:
            cluster = _cluster(tx, ctx.account, cluster_id)
            if not same_trust_anchor(cluster.trust_anchor, store.trust_anchor):
                raise CloudHsmClusterNotRelatedException(
                    f"The CloudHSM cluster {cluster_id} has another cluster certificate (trust "
                    f"anchor) than the cluster {store.cluster_id} of custom key store "
                    f"{store_id}: it is not related."
                )
            _check_cluster_fit(cluster)
            _check_cluster_free(tx, ctx.account, cluster, except_store=store_id)
            store = store.evolve(cluster_id=cluster_id)
        tx.custom_key_stores.update(store)
        if password is not None:
            wrapped = core.root_key.wrap(password.encode(), password_aad(store_id))
            tx.custom_key_stores.set_wrapped_password(store_id, wrapped)
        record_change(tx, core, store_id)


def _check_update_state(store: CustomKeyStore, *, name_only: bool) -> None:
    state = store.connection_state
    if state == ConnectionState.DISCONNECTED:
        return
    if name_only and state == ConnectionState.CONNECTED:
        return
    what = "the name only" if state == ConnectionState.CONNECTED else "nothing"
    raise CustomKeyStoreInvalidStateException(
        f"Custom key store {store.store_id} is {state.value}: UpdateCustomKeyStore may change "
        f"{what} in that state; disconnect it (DisconnectCustomKeyStore) first."
    )


def delete_custom_key_store(core: Core, ctx: RequestContext, store_id: str) -> None:
    """DeleteCustomKeyStore of a DISCONNECTED store that holds no KMS keys. Raises
    CustomKeyStoreNotFoundException, CustomKeyStoreInvalidStateException,
    CustomKeyStoreHasCMKsException."""
    authorize_account(core, ctx, "DeleteCustomKeyStore")
    with core.store.transaction() as tx:
        store = get_store(tx, ctx, store_id, for_update=True)
        if store.connection_state != ConnectionState.DISCONNECTED:
            raise CustomKeyStoreInvalidStateException(
                f"Custom key store {store_id} is {store.connection_state.value}: "
                "DeleteCustomKeyStore is valid only for a DISCONNECTED store."
            )
        held = tx.custom_key_stores.key_count(store_id)
        if held:
            raise CustomKeyStoreHasCMKsException(
                f"Custom key store {store_id} still holds {held} KMS keys: schedule their "
                "deletion (ScheduleKeyDeletion) and delete the store when they are deleted."
            )
        tx.custom_key_stores.delete(store_id)
        record_change(tx, core, store_id)
    core.store_tokens.forget(store_id)
    core.xks_clients.forget(store_id)


# -- for the data plane (keys in custom key stores) ----------------------------------------


def store_of(core: Core, store_id: str) -> CustomKeyStore | None:
    """A custom key store by id, any account (DescribeKey shows a key's CloudHsmClusterId
    and, from its ConnectionState, whether the key is Unavailable)."""
    with core.store.transaction() as tx:
        return tx.custom_key_stores.get(store_id)


def store_for_new_key(
    core: Core,
    ctx: RequestContext,
    store_id: str,
    store_type: CustomKeyStoreType = CustomKeyStoreType.AWS_CLOUDHSM,
) -> CustomKeyStore:
    """The caller's store in which CreateKey makes a key: of ``store_type`` (the key's
    Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE), CONNECTED, and for AWS_CLOUDHSM with a
    cluster of two HSMs. Raises CustomKeyStoreNotFoundException,
    UnsupportedOperationException (a store of the other type),
    CustomKeyStoreInvalidStateException, CloudHsmClusterInvalidConfigurationException."""
    with core.store.transaction() as tx:
        store = get_store(tx, ctx, store_id)
        cluster = tx.hsm_clusters.get(store.cluster_id)
    if store.store_type is not store_type:
        raise UnsupportedOperationException(
            f"Custom key store {store_id} is of type {store.store_type.value}: a KMS key with "
            f"Origin {store_type.value} needs a custom key store of type {store_type.value}."
        )
    if store.connection_state != ConnectionState.CONNECTED:
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store_id} is {store.connection_state.value}: CreateKey is "
            "valid only in a CONNECTED custom key store."
        )
    if cluster is not None:
        _check_cluster_fit(cluster)
    return store
