"""Ports of the key-store layer: the root key, and the key store where a KMS key's material
lives and where every operation with it runs.

Services never hold key material or a library's key object: they ask the key's store
(``KeyStores.for_key``) to encrypt, sign, mac, derive, and to make, import, copy, erase and
destroy material versions. A store owns whatever it keeps of a key (wrapped rows, a token
object, an external key's id) and whatever it caches in the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from strongroom.domain.enums import (
    EncapsulationAlgorithm,
    EncryptionAlgorithm,
    KeyAgreementAlgorithm,
    MacAlgorithm,
    MessageType,
    Origin,
    SigningAlgorithm,
)
from strongroom.domain.errors import KeyStoreError, UnsupportedOperationException
from strongroom.domain.models import Caller, Key
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.loop_bridge import on_bridge
from strongroom.storage.ports import Transaction


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True, unsafe_hash=True)
class CallOrigin:
    """The API request a key store works for: what a store that calls out (an external key
    store's proxy) tells the other side (the XKS ``requestMetadata``: the KMS request id and
    operation, the caller's ARN)."""

    request_id: str
    operation: str
    caller: Caller


CURRENT_CALL: ContextVar[CallOrigin | None] = ContextVar("strongroom_current_call", default=None)
"""The request being served in this context: set by the request pipeline around each
handler, None outside a request (jobs, admin commands)."""


class MustLeaveLoop(Exception):
    """Raised by a key store asked, on the event loop, for an operation that waits on the
    network (an external key store's proxy): the request pipeline runs the handler again
    where it may wait (``keystores.loop_bridge.run_bridged``). Raised before anything is
    written or sent, so running the handler again from the start is safe."""


def leave_loop() -> None:
    """MustLeaveLoop when called straight on a thread that runs an asyncio event loop (a
    handler the pipeline runs on the loop, where waiting would block it); nothing on the
    loop's bridge (``keystores.loop_bridge``) or on any other thread."""
    if on_bridge():
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise MustLeaveLoop


class RootKey(Protocol):
    """Wraps secrets for storage. Implementations: a file (zero setup), later PKCS#11."""

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        """Return ``secret`` encrypted under the root key, bound to ``aad``."""
        ...

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        """Return the secret; raises KeyStoreError when it does not unwrap."""
        ...

    def check_value(self) -> bytes:
        """A key check value: 32 bytes that name this root key and reveal nothing of it.
        The database records it, so a server with another root key refuses to start; two
        root keys give the same value only if they are the same key. Each provider defines
        its own construction (an HSM computes it inside the token)."""
        ...


class NewMaterial:
    """Material for a key's next version, made by ``KeyStore.new_material`` before the
    transaction that stores it (``KeyStore.put_material``). Opaque: only the store that
    made it looks inside (a store that generates inside a token may carry nothing)."""

    __slots__ = ()


class KeyStore(Protocol):
    """Where the material of a key lives and where operations with it run, per material
    version. ``key`` is always the key record the operation is for (the store reads what
    it needs from it: ARN, spec, Region, primary Region, origin); ``version`` is the
    material version the service chose (``services.material.current_version``, or the one
    a ciphertext names).

    Errors: a ciphertext that does not open, or names a version the key does not have, is
    InvalidCiphertextException with no detail; an operation a store cannot do for the key
    is UnsupportedOperationException; a store that fails inside (a token gone, material
    that does not unwrap, a version missing that must exist) raises KeyStoreError, which
    the wire shows as KMSInternalException. Checks of parameters against the key spec are
    the services' (``crypto.specs``) and come first; a store may check again.

    Caching: a store may cache what it unwraps or opens, bounded, but must drop a key's
    entries on ``forget`` (the runtime calls it for every change of the key this process
    makes or the change feed announces) and never keep what it read while a ``forget``
    of that key came in. Steady-state operations must need no database round trip.
    """

    # --- material lifecycle -------------------------------------------------------------

    def new_material(self, key: Key, given: KeyBytes | None = None) -> NewMaterial:
        """Material for a new version of ``key``: fresh, or ``given`` (ImportKeyMaterial's
        unwrapped material, a seed file's). Called outside any transaction, since making an
        RSA key takes up to a second. UnsupportedOperationException when the store cannot
        take given material (material made inside an HSM never comes from outside)."""
        ...

    def put_material(
        self, tx: Transaction, key: Key, version: int, material: NewMaterial, now: datetime
    ) -> None:
        """Keep ``material`` as ``version`` of ``key`` within ``tx`` (the service records
        the version itself, ``MaterialVersion``). Re-importing a version that was erased
        calls it again for that version."""
        ...

    def copy_material(
        self, tx: Transaction, source: Key, target: Key, versions: Iterable[int], now: datetime
    ) -> None:
        """Give ``target`` its own copy of each of ``versions`` that ``source`` has and it
        lacks (UpdatePrimaryRegion: a new multi-Region primary gets its own material)."""
        ...

    def same_material(self, tx: Transaction, key: Key, version: int, material: KeyBytes) -> bool:
        """Whether ``material`` is the material of ``version`` of ``key`` (a seed file that
        names a key's material checks it is the key's own); False when there is none."""
        ...

    def erase(self, tx: Transaction, key: Key, version: int) -> None:
        """Destroy the material of one version of ``key`` (DeleteImportedKeyMaterial,
        expiry): cryptographic erasure; the version's record stays the service's."""
        ...

    def destroy(self, tx: Transaction, key: Key) -> None:
        """Destroy every material version of ``key`` that the database holds; ``key`` is
        deleted in ``tx``. No other transaction may be opened here (SQLite would wait on
        ``tx``'s own lock)."""
        ...

    def discard(self, key: Key) -> None:
        """Destroy what the store keeps of ``key`` outside the database (a token's objects),
        once the transaction that deleted ``key`` has committed (so that material never goes
        while its key still exists), or once the one that was to create it has failed. Best
        effort: what cannot be destroyed now is logged and left (AWS: deletion "makes a best
        effort to delete the key material from the associated cluster")."""
        ...

    def forget(self, arn: str) -> None:
        """Drop what this process cached of the key ``arn`` (for a multi-Region key, of
        every related key: they may read material through each other)."""
        ...

    def forget_all(self) -> None:
        """Drop everything this process cached."""
        ...

    # --- symmetric encryption (the blob format is crypto.blob's) -------------------------

    def encrypt(self, key: Key, version: int, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """AES-256-GCM of ``plaintext`` under ``version`` of a symmetric key with the
        12-byte ``nonce`` and ``aad`` that ``crypto.blob.seal`` gives: ciphertext || tag."""
        ...

    def decrypt(self, key: Key, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of ``sealed`` (ciphertext || 16-byte tag), as ``encrypt`` made it.
        InvalidCiphertextException when the tag does not verify, the version does not
        exist, or the key is not a symmetric encryption key."""
        ...

    # --- asymmetric keys and HMAC --------------------------------------------------------

    def public_key(self, key: Key, version: int) -> bytes:
        """The public key of an asymmetric key, DER SubjectPublicKeyInfo."""
        ...

    def sign(
        self,
        key: Key,
        version: int,
        message: bytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    ) -> bytes:
        """The signature of ``message`` (or of the digest it is), as Sign returns it."""
        ...

    def verify(
        self,
        key: Key,
        version: int,
        message: bytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
        signature: bytes,
    ) -> bool:
        """Whether ``signature`` is ``algorithm``'s signature of ``message`` under the key."""
        ...

    def rsa_encrypt(
        self, key: Key, version: int, plaintext: bytes, algorithm: EncryptionAlgorithm
    ) -> bytes:
        """The RSAES-OAEP ciphertext of ``plaintext`` (no header, as AWS's)."""
        ...

    def rsa_decrypt(
        self, key: Key, version: int, ciphertext: bytes, algorithm: EncryptionAlgorithm
    ) -> bytes:
        """The plaintext of an RSAES-OAEP ciphertext; InvalidCiphertextException, no
        detail, when it does not decrypt."""
        ...

    def generate_mac(
        self, key: Key, version: int, message: bytes, algorithm: MacAlgorithm
    ) -> bytes:
        """The HMAC of ``message`` under an HMAC key."""
        ...

    def verify_mac(
        self, key: Key, version: int, message: bytes, algorithm: MacAlgorithm, mac: bytes
    ) -> bool:
        """Whether ``mac`` is the HMAC of ``message``, compared in constant time."""
        ...

    def derive_shared_secret(
        self, key: Key, version: int, public_key: bytes, algorithm: KeyAgreementAlgorithm
    ) -> KeyBytes:
        """The raw ECDH shared secret of the key and a peer's DER SubjectPublicKeyInfo;
        ValidationException for a peer key that is not one of the key's curve."""
        ...

    def encapsulate(
        self, key: Key, version: int, algorithm: EncapsulationAlgorithm
    ) -> tuple[bytes, KeyBytes]:
        """A fresh ML-KEM shared secret under the key: (its ciphertext, the secret)."""
        ...

    def decapsulate(
        self, key: Key, version: int, ciphertext: bytes, algorithm: EncapsulationAlgorithm
    ) -> KeyBytes:
        """The shared secret of an ML-KEM ciphertext (FIPS 203 implicit rejection for a
        wrong one); InvalidCiphertextException when its length does not fit the spec."""
        ...


class SymmetricOnly:
    """The asymmetric, HMAC and key agreement operations of a store that holds symmetric
    encryption keys only (the keys of custom key stores): UnsupportedOperationException,
    naming ``where`` the key is."""

    where = "this key store"

    def _unsupported(self, key: Key) -> UnsupportedOperationException:
        return UnsupportedOperationException(
            f"{key.arn} is in {self.where}: only symmetric encryption is supported there."
        )

    def public_key(self, key: Key, version: int) -> bytes:
        raise self._unsupported(key)

    def sign(
        self,
        key: Key,
        version: int,
        message: bytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
    ) -> bytes:
        raise self._unsupported(key)

    def verify(
        self,
        key: Key,
        version: int,
        message: bytes,
        message_type: MessageType,
        algorithm: SigningAlgorithm,
        signature: bytes,
    ) -> bool:
        raise self._unsupported(key)

    def rsa_encrypt(
        self, key: Key, version: int, plaintext: bytes, algorithm: EncryptionAlgorithm
    ) -> bytes:
        raise self._unsupported(key)

    def rsa_decrypt(
        self, key: Key, version: int, ciphertext: bytes, algorithm: EncryptionAlgorithm
    ) -> bytes:
        raise self._unsupported(key)

    def generate_mac(
        self, key: Key, version: int, message: bytes, algorithm: MacAlgorithm
    ) -> bytes:
        raise self._unsupported(key)

    def verify_mac(
        self, key: Key, version: int, message: bytes, algorithm: MacAlgorithm, mac: bytes
    ) -> bool:
        raise self._unsupported(key)

    def derive_shared_secret(
        self, key: Key, version: int, public_key: bytes, algorithm: KeyAgreementAlgorithm
    ) -> KeyBytes:
        raise self._unsupported(key)

    def encapsulate(
        self, key: Key, version: int, algorithm: EncapsulationAlgorithm
    ) -> tuple[bytes, KeyBytes]:
        raise self._unsupported(key)

    def decapsulate(
        self, key: Key, version: int, ciphertext: bytes, algorithm: EncapsulationAlgorithm
    ) -> KeyBytes:
        raise self._unsupported(key)


class ConnectedKeyStore(KeyStore, Protocol):
    """The key store of the keys of custom key stores, whose availability each custom key
    store's connection decides (``keystores.cloudhsm``, ``keystores.external``)."""

    def available(self, key: Key, *, probe: bool = False) -> bool:
        """Whether ``key``'s custom key store is connected and, with ``probe``, its token
        answers now; False means the key is Unavailable."""
        ...


class KeyStores:
    """The key stores of a runtime, and the one place that says which store holds a key.

    A key of a custom key store (``Key.custom_key_store_id``) is in its store: with origin
    AWS_CLOUDHSM in the store's token (``custom``), with origin EXTERNAL_KEY_STORE behind
    the store's proxy (``external``, which keeps the key's own material in the software
    store and wraps what it encrypts with the external key). Every other key is in the
    software store. ``for_key`` is on the hot path: a field read and a dict look-up."""

    __slots__ = ("_all", "_by_origin", "_software")

    def __init__(
        self,
        software: KeyStore,
        custom: ConnectedKeyStore | None = None,
        external: ConnectedKeyStore | None = None,
    ) -> None:
        self._software = software
        self._by_origin: dict[Origin, ConnectedKeyStore] = {}
        if custom is not None:
            self._by_origin[Origin.AWS_CLOUDHSM] = custom
        if external is not None:
            self._by_origin[Origin.EXTERNAL_KEY_STORE] = external
        self._all: tuple[KeyStore, ...] = (software, *self._by_origin.values())

    def for_key(self, key: Key) -> KeyStore:
        """The store that holds ``key``'s material (on the hot path: keep it a field read)."""
        store = self._by_origin.get(key.origin)
        if store is not None:
            return store
        if key.custom_key_store_id is not None:
            raise KeyStoreError(f"{key.arn} is in a custom key store, and none is configured")
        return self._software

    def available(self, key: Key, *, probe: bool = False) -> bool:
        """Whether ``key`` can be used now: always for a key of the software store; for a key
        in a custom key store, whether its store is connected (and, with ``probe``, its token
        answers). The services show an unavailable key as KeyState Unavailable."""
        if key.custom_key_store_id is None:
            return True
        store = self._by_origin.get(key.origin)
        return store is not None and store.available(key, probe=probe)

    def forget(self, arn: str) -> None:
        """Drop what every store cached of the key ``arn`` (``KeyStore.forget``)."""
        for store in self._all:
            store.forget(arn)

    def forget_all(self) -> None:
        for store in self._all:
            store.forget_all()
