"""The tokens of connected custom key stores, per process, and the one way into them.

The connection state of a custom key store lives in the database (``custom_key_stores``),
which every worker process and node shares. A process that needs a store's token
(``connected_token``) reads the store once, logs in to its cluster's token with the store's
kmsuser password and keeps the logged-in ``Token``; in steady state no database round
trip is needed. Connect, Disconnect, Update and Delete record the store in the change feed
(``store_change_name``): every process then drops the token it kept
(``StoreTokens.invalidate``, called by the server's change poll) and reads the state
anew on next use, so a disconnection reaches every process within one poll interval.

Every call into a token goes through ``keystores.pkcs11_token.Token.run`` and so through
its one process-wide lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from strongroom.crypto.context import encode_context
from strongroom.domain.enums import ConnectionState
from strongroom.domain.errors import KeyStoreError, KMSInvalidStateException
from strongroom.domain.models import HsmCluster
from strongroom.keystores import softhsm
from strongroom.keystores.pkcs11_token import Token, TokenError, TokenUnavailable

if TYPE_CHECKING:
    from strongroom.services.core import Core

T = TypeVar("T")

_CHANGE_PREFIX = "custom-key-store/"


def store_change_name(store_id: str) -> str:
    """The name a change of a custom key store has in the change feed."""
    return _CHANGE_PREFIX + store_id


def password_aad(store_id: str) -> bytes:
    """The AAD binding a wrapped kmsuser password to its custom key store."""
    return encode_context({"customKeyStoreId": store_id})


class StoreTokens:
    """The logged-in tokens of the connected stores this process has used, by store id."""

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._generation = 0  # counts invalidations, so a read that raced one is not kept
        self._lock = threading.Lock()
        # Held while a token is opened for a store: two threads never log in to one store
        # at once (a second Token on a token shares the first one's session, and closing
        # the one that lost the race would close the session of the other).
        self.opening = threading.Lock()

    @property
    def generation(self) -> int:
        """Read before reading a store's state to ``put`` its token afterwards."""
        return self._generation

    def get(self, store_id: str) -> Token | None:
        return self._tokens.get(store_id)

    def put(self, store_id: str, token: Token, generation: int) -> None:
        """Keep a token opened for a state read at ``generation``, unless an invalidation
        came in meanwhile (the store may have been disconnected since)."""
        with self._lock:
            if generation == self._generation and store_id not in self._tokens:
                self._tokens[store_id] = token
                return
        if self._tokens.get(store_id) is not token:
            token.close()

    def forget(self, store_id: str) -> None:
        """Drop and close (log out) a store's token."""
        with self._lock:
            self._generation += 1
            token = self._tokens.pop(store_id, None)
        if token is not None:
            token.close()

    def invalidate(self, name: str) -> None:
        """A change-feed entry arrived: forget the token of the store it names, if any."""
        if name.startswith(_CHANGE_PREFIX):
            self.forget(name[len(_CHANGE_PREFIX) :])

    def close(self) -> None:
        for store_id in list(self._tokens):
            self.forget(store_id)


def open_token(core: Core, cluster: HsmCluster, password: str) -> Token:
    """A Token on ``cluster``'s token that logs in with ``password`` as its user PIN (the
    kmsuser password), not yet opened. A cluster made with ``hsm-cluster add --softhsm``
    lives in the data directory's own SoftHSM2, selected first. Raises TokenError when
    that SoftHSM2 cannot be selected in this process."""
    if cluster.softhsm:
        if core.softhsm_data_dir is None:
            raise TokenError(f"cluster {cluster.cluster_id} is in a data directory's SoftHSM2")
        softhsm.use_data_dir(core.softhsm_data_dir)
    return Token(Path(cluster.module_path), cluster.token_label, password)


def _unavailable(store_id: str, key_arn: str | None) -> KMSInvalidStateException:
    if key_arn is not None:
        return KMSInvalidStateException(f"{key_arn} is unavailable.")
    return KMSInvalidStateException(f"Custom key store {store_id} is not connected.")


def connected_token(core: Core, store_id: str, *, key_arn: str | None = None) -> Token:
    """The logged-in token of the custom key store ``store_id`` for a key's operation.

    Raises KMSInvalidStateException ("<key_arn> is unavailable.", AWS's text for a key in
    the Unavailable state) when the store is not CONNECTED, is gone, or its token cannot be
    logged in to now (removed, the password changed). Reads the database only when this
    process holds no token of the store."""
    token = core.store_tokens.get(store_id)
    if token is not None:
        return token
    with core.store_tokens.opening:
        for _ in range(_ATTEMPTS):
            token = core.store_tokens.get(store_id)
            if token is not None:
                return token
            generation = core.store_tokens.generation
            token = _log_in_if_connected(core, store_id, key_arn)
            core.store_tokens.put(store_id, token, generation)
            if core.store_tokens.get(store_id) is token:
                return token
            # A store changed while this one's state was read: read it again.
    raise _unavailable(store_id, key_arn)


_ATTEMPTS = 3


def _log_in_if_connected(core: Core, store_id: str, key_arn: str | None) -> Token:
    with core.store.transaction() as tx:
        store = tx.custom_key_stores.get(store_id)
        cluster = None if store is None else tx.hsm_clusters.get(store.cluster_id)
        wrapped = tx.custom_key_stores.wrapped_password(store_id)
    if store is None or cluster is None or wrapped is None:
        raise _unavailable(store_id, key_arn)
    if store.connection_state != ConnectionState.CONNECTED:
        raise _unavailable(store_id, key_arn)
    password = core.root_key.unwrap(wrapped, password_aad(store_id)).decode()
    try:
        token = open_token(core, cluster, password)
        token.check()
    except KeyStoreError:
        raise _unavailable(store_id, key_arn) from None
    return token


def run_in_store(
    core: Core, store_id: str, fn: Callable[[Any], T], *, key_arn: str | None = None
) -> T:
    """``fn(session)`` on the store's logged-in token session (under the process-wide token
    lock). A token that is gone or refuses the login gives KMSInvalidStateException
    ("<key_arn> is unavailable."); other errors of ``fn`` (pkcs11's) propagate for the
    caller to map."""
    token = connected_token(core, store_id, key_arn=key_arn)
    try:
        return token.run(fn)
    except TokenUnavailable:
        raise _unavailable(store_id, key_arn) from None
    except TokenError:
        core.store_tokens.forget(store_id)
        raise _unavailable(store_id, key_arn) from None
