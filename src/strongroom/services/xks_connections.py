"""The XKS proxy clients of connected external key stores, per process, and the one way to
them.

Like ``services.store_tokens`` for CloudHSM stores: the connection state of an external key
store lives in the database, which every worker process and node shares. A process that
needs a store's proxy (``connected_client``) reads the store once, unwraps the proxy's
secret access key and keeps one ``XksClient`` (its keep-alive connection pool) for the
store; in steady state no database round trip is needed. Connect, Disconnect, Update and
Delete record the store in the change feed (``store_change_name``): every process then
drops the client it kept (``XksClients.invalidate``, called by the server's
change poll) and reads the store anew on next use, so a disconnection or a rotated
credential reaches every process within one poll interval.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from strongroom.domain.enums import ConnectionErrorCode, ConnectionState, CustomKeyStoreType
from strongroom.domain.errors import KmsError, KMSInvalidStateException
from strongroom.domain.models import CustomKeyStore
from strongroom.keystores.xks_client import Health, XksCall, XksClient, XksEndpoint, XksError
from strongroom.keystores.xks_errors import (
    connection_error_code,
    for_store_check,
    health_failure,
)
from strongroom.services.store_tokens import password_aad, store_change_name

if TYPE_CHECKING:
    from strongroom.services.core import Core

CHECK_TIMEOUT = 2.0
"""Seconds a management operation (Create, Update, ConnectCustomKeyStore) gives the proxy's
health check. The data plane keeps AWS's 250 ms; a management call is rare, its caller waits
for it anyway, and the first call opens a new connection (a TLS handshake, for https)."""


class XksClients:
    """The XKS clients of the connected external key stores this process has used, by
    store id."""

    def __init__(self) -> None:
        self._clients: dict[str, XksClient] = {}
        self._generation = 0  # counts invalidations, so a read that raced one is not kept
        self._lock = threading.Lock()

    @property
    def generation(self) -> int:
        """Read before reading a store's state to ``put`` its client afterwards."""
        return self._generation

    def get(self, store_id: str) -> XksClient | None:
        return self._clients.get(store_id)

    def put(self, store_id: str, client: XksClient, generation: int) -> XksClient | None:
        """Keep a client made from a state read at ``generation`` and return the client the
        store has now: ``client``, or the one another thread kept first; None (``client``
        closed) when an invalidation came in meanwhile (the store may be disconnected)."""
        with self._lock:
            kept = self._clients.get(store_id)
            if kept is None and generation == self._generation:
                self._clients[store_id] = client
                return client
        client.close()
        return kept

    def forget(self, store_id: str) -> None:
        """Drop a store's client: the next call reads the store and makes a new one. The
        dropped client is not closed: a request may have taken it just before (the change
        poll may report a Connect after this process made a client for the connected store)
        and must finish with it; its connections close when the last such request lets go
        of it (CPython frees it then)."""
        with self._lock:
            self._generation += 1
            self._clients.pop(store_id, None)

    def invalidate(self, name: str) -> None:
        """A change-feed entry arrived: forget the client of the store it names, if any."""
        prefix = store_change_name("")
        if name.startswith(prefix):
            self.forget(name[len(prefix) :])

    def close(self) -> None:
        """Close every client (the process stops)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


def not_connected(store_id: str) -> KMSInvalidStateException:
    """A key's operation in an external key store that is not connected (the meaning of the
    XKS proxy API specification's message for "Custom key store is not in CONNECTED
    state")."""
    return KMSInvalidStateException(
        f"The KMS key is in the external key store {store_id}, which is not connected to "
        "its external key store proxy: connect the key store (ConnectCustomKeyStore), then "
        "try the request again."
    )


def endpoint_of(
    core: Core, store: CustomKeyStore, wrapped_secret: bytes, secret: str | None = None
) -> XksEndpoint:
    """How to reach the proxy of ``store``: its proxy settings, Region, the secret access
    key (``secret``, or unwrapped from ``wrapped_secret``) and the CA bundle setting."""
    assert store.xks is not None
    if secret is None:
        secret = core.root_key.unwrap(wrapped_secret, password_aad(store.store_id)).decode()
    ca_bundle = None if core.xks_ca_bundle is None else str(core.xks_ca_bundle)
    return XksEndpoint(
        uri_endpoint=store.xks.uri_endpoint,
        uri_path=store.xks.uri_path,
        region=store.region,
        access_key_id=store.xks.access_key_id,
        secret_access_key=secret,
        ca_bundle=ca_bundle,
    )


def xks_endpoint(core: Core, store: CustomKeyStore) -> XksEndpoint:
    """How to reach the proxy of the external key store ``store`` (its secret access key
    unwrapped from the database). KMSInvalidStateException when the store is gone."""
    with core.store.transaction() as tx:
        wrapped = tx.custom_key_stores.wrapped_password(store.store_id)
    if wrapped is None or store.xks is None:
        raise not_connected(store.store_id)
    return endpoint_of(core, store, wrapped)


def connected_client(core: Core, store_id: str, *, key_arn: str | None = None) -> XksClient:
    """The XKS client of the external key store ``store_id`` for a key's operation.

    Raises KMSInvalidStateException (``not_connected``) when the store is not CONNECTED, is
    gone or is not an external key store. Reads the database only when this process holds
    no client of the store. ``key_arn`` is the key the client is wanted for (unused by the
    message, which AWS words without it)."""
    client = core.xks_clients.get(store_id)
    if client is not None:
        return client
    for _ in range(_ATTEMPTS):
        generation = core.xks_clients.generation
        with core.store.transaction() as tx:
            store = tx.custom_key_stores.get(store_id)
            wrapped = tx.custom_key_stores.wrapped_password(store_id)
        if (
            store is None
            or wrapped is None
            or store.xks is None
            or store.store_type is not CustomKeyStoreType.EXTERNAL_KEY_STORE
            or store.connection_state is not ConnectionState.CONNECTED
        ):
            raise not_connected(store_id)
        kept = core.xks_clients.put(
            store_id, XksClient(endpoint_of(core, store, wrapped)), generation
        )
        if kept is not None:
            return kept
        # The store changed while its state was read: read it again.
    raise not_connected(store_id)


_ATTEMPTS = 3


def _ask_health(endpoint: XksEndpoint, call: XksCall) -> Health | XksError:
    """The proxy's health at ``endpoint``, or why it could not be had (a management call:
    ``CHECK_TIMEOUT``, a connection of its own)."""
    client = XksClient(endpoint, timeout=CHECK_TIMEOUT, pool_size=1)
    try:
        return client.health(call)
    except XksError as e:
        return e
    finally:
        client.close()


def check_proxy(endpoint: XksEndpoint, call: XksCall) -> KmsError | None:
    """Ask the proxy at ``endpoint`` for its health, as Create and UpdateCustomKeyStore do:
    None when it answered and not every key manager is UNAVAILABLE, else the error to raise
    (``keystores.xks_errors.for_store_check`` / ``health_failure``:
    XksProxyUriUnreachableException, XksProxyIncorrectAuthenticationCredentialException,
    XksProxyInvalidConfigurationException, XksProxyInvalidResponseException)."""
    answer = _ask_health(endpoint, call)
    if isinstance(answer, XksError):
        return for_store_check(answer)
    return health_failure(answer)


def check_connection(endpoint: XksEndpoint, call: XksCall) -> ConnectionErrorCode | None:
    """Ask the proxy at ``endpoint`` for its health, as ConnectCustomKeyStore does: None
    when it answered and not every key manager is UNAVAILABLE, else the ConnectionErrorCode
    of a FAILED store (``keystores.xks_errors.connection_error_code``;
    XKS_PROXY_NOT_REACHABLE when every key manager is UNAVAILABLE)."""
    answer = _ask_health(endpoint, call)
    if isinstance(answer, XksError):
        return connection_error_code(answer)
    return ConnectionErrorCode.XKS_PROXY_NOT_REACHABLE if answer.all_unavailable else None
