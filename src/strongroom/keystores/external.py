"""The key store of keys in external key stores (origin EXTERNAL_KEY_STORE): double
encryption, as AWS KMS does it.

A KMS key in an external key store has material of its own, made and kept like any
symmetric key's by the software store (wrapped under the root key; one version: such keys
never rotate), and an external key (``Key.xks_key_id``) in the key manager behind the
store's XKS proxy. Encrypt first seals the plaintext under the key's own material with the
nonce and AAD of every symmetric blob (``crypto.blob``), then has the proxy encrypt that
sealed text with the external key; Decrypt undoes both in reverse. Neither layer alone
opens a blob: the KMS can never use the key without the proxy's consent, and the proxy
never sees a plaintext.

The external layer's AAD (``proxy_aad``) is the key's ARN, the material version and the
blob's nonce, so the proxy's AES-GCM is bound to the one blob it was made for. The
encryption context is the inner layer's alone: a wrong one fails there, with
InvalidCiphertextException as for every symmetric key, after the proxy's consent; a
ciphertext changed under the external key fails at the proxy (KMSInvalidStateException,
the XKS specification's error for Decrypt). The proxy's answer is checked with the
ciphertextDataIntegrityValue (``keystores.xks_client``).

What follows a blob's header (format byte ``FORMAT_EXTERNAL``) is ``Wrapped.to_bytes``:
the proxy's IV (12 or 16 bytes) and ciphertextMetadata (up to 20), each after its 1-byte
length, its 16-byte tag, then its ciphertext, as long as the inner sealed text.

Every call to a proxy waits on the network, so it never runs straight on the event loop
(``leave_loop``): the request pipeline runs such a handler on the loop's bridge
(``keystores.loop_bridge``), where the call awaits the proxy's answer without blocking.
A proxy's failure becomes AWS's error for cryptographic operations
(``keystores.xks_errors.for_crypto``: KMSInvalidStateException with a message naming the
cause, DependencyTimeoutException when the proxy did not answer in time).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from strongroom.domain.errors import (
    KeyStoreError,
    KmsError,
    KMSInvalidStateException,
    UnsupportedOperationException,
)
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.base import (
    CURRENT_CALL,
    KeyStore,
    NewMaterial,
    SymmetricOnly,
    leave_loop,
)
from strongroom.keystores.xks_client import Wrapped, XksCall, XksClient, XksError
from strongroom.keystores.xks_errors import for_crypto
from strongroom.storage.ports import Transaction

log = logging.getLogger(__name__)


class XksConnections(Protocol):
    """The proxies of connected external key stores (``services.xks_connections``)."""

    def client(self, store_id: str, key_arn: str) -> XksClient:
        """The client of the store's proxy; KMSInvalidStateException when the store is not
        CONNECTED (the key is unavailable)."""
        ...


def _store_id(key: Key) -> str:
    if key.custom_key_store_id is None or key.xks_key_id is None:
        raise KeyStoreError(f"{key.arn} is not a key of an external key store")
    return key.custom_key_store_id


def proxy_aad(key: Key, version: int, nonce: bytes) -> bytes:
    """The AAD the proxy's AES-GCM gets: ``key``'s ARN, the material version (4 bytes,
    big-endian) and the blob's 12-byte nonce."""
    return key.arn.encode() + version.to_bytes(4, "big") + nonce


def _call(key: Key) -> XksCall:
    """The requestMetadata of a call for ``key`` in the request being served."""
    current = CURRENT_CALL.get()
    if current is None:  # outside a request: nothing calls a proxy there today
        return XksCall(kms_request_id="", kms_operation="", kms_key_arn=key.arn)
    return XksCall(
        kms_request_id=current.request_id,
        kms_operation=current.operation,
        aws_principal_arn=current.caller.principal.arn,
        kms_key_arn=key.arn,
    )


def _failed(e: XksError, key: Key) -> KmsError:
    """AWS's error for a failed proxy call, whose detail goes to the log (the caller's
    message names the cause, never the proxy's own words)."""
    log.warning("external key store %s, key %s: %s", key.custom_key_store_id, key.arn, e.detail)
    return for_crypto(e, key.arn)


class ExternalKeyStore(SymmetricOnly):
    """Keys of external key stores: their own material in ``inner`` (the software store),
    wrapped again by their external key through their store's proxy."""

    where = "an external key store"

    def __init__(self, inner: KeyStore, connections: XksConnections) -> None:
        self._inner = inner
        self._connections = connections

    def _client(self, key: Key) -> XksClient:
        return self._connections.client(_store_id(key), key.arn)

    def available(self, key: Key, *, probe: bool = False) -> bool:
        """Whether ``key``'s store is CONNECTED (no proxy call: a failing proxy shows in the
        errors of the operations, as in AWS, not in the key state)."""
        try:
            self._client(key)
        except KMSInvalidStateException:
            return False
        return True

    # --- material lifecycle: the key's own material, in the software store -----------------

    def new_material(self, key: Key, given: KeyBytes | None = None) -> NewMaterial:
        if given is not None:
            raise UnsupportedOperationException(
                f"{key.arn} is in an external key store: its key material is made by this "
                "server and wrapped by its external key; it cannot be imported."
            )
        return self._inner.new_material(key)

    def put_material(
        self, tx: Transaction, key: Key, version: int, material: NewMaterial, now: datetime
    ) -> None:
        self._inner.put_material(tx, key, version, material, now)

    def copy_material(
        self, tx: Transaction, source: Key, target: Key, versions: Iterable[int], now: datetime
    ) -> None:
        raise UnsupportedOperationException(
            f"{source.arn} is in an external key store, which holds no multi-Region keys."
        )

    def same_material(self, tx: Transaction, key: Key, version: int, material: KeyBytes) -> bool:
        """Never: a key of an external key store takes no material from outside."""
        return False

    def erase(self, tx: Transaction, key: Key, version: int) -> None:
        raise UnsupportedOperationException(
            f"{key.arn} is in an external key store: it has no imported key material to delete."
        )

    def destroy(self, tx: Transaction, key: Key) -> None:
        """The key's own material goes; the external key stays the key manager's (AWS: deleting
        a KMS key "has no effect on the associated external key")."""
        self._inner.destroy(tx, key)

    def discard(self, key: Key) -> None:
        self._inner.discard(key)

    def forget(self, arn: str) -> None:
        """Nothing of its own cached: the inner store is forgotten by ``KeyStores`` itself."""

    def forget_all(self) -> None:
        """As ``forget``."""

    # --- symmetric encryption: double ----------------------------------------------------------

    def encrypt(self, key: Key, version: int, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        leave_loop()
        client = self._client(key)
        inner = self._inner.encrypt(key, version, nonce, plaintext, aad)
        assert key.xks_key_id is not None  # _client checked it
        try:
            wrapped = client.encrypt(
                key.xks_key_id, inner, proxy_aad(key, version, nonce), _call(key)
            )
        except XksError as e:
            raise _failed(e, key) from None
        return wrapped.to_bytes()

    def decrypt(self, key: Key, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        leave_loop()
        wrapped = Wrapped.from_bytes(sealed)
        client = self._client(key)
        assert key.xks_key_id is not None
        try:
            inner = client.decrypt(
                key.xks_key_id, wrapped, proxy_aad(key, version, nonce), _call(key)
            )
        except XksError as e:
            raise _failed(e, key) from None
        return self._inner.decrypt(key, version, nonce, inner, aad)
