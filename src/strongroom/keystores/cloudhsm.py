"""The key store of custom key stores of type AWS_CLOUDHSM: material inside a PKCS#11 token.

A KMS key in such a store has one material version, an AES-256 secret key object that the
store's token generates and never lets out: a token object (CKA_TOKEN), private, sensitive,
not extractable, usable to encrypt and decrypt and nothing else, labelled with the key's ARN
(CKA_LABEL) and carrying its material version (CKA_ID, 4 bytes big-endian), as AWS labels
the key it makes in a CloudHSM cluster with the KMS key's ARN. Nothing of it is written to
the database: the material version record the services keep (``MaterialVersion``) is the
reference, since the ARN and the version name the object. Keys in a custom key store do not
rotate (EnableKeyRotation and RotateKeyOnDemand refuse them), so version 1 is the only one.

AES-256-GCM runs inside the token (CKM_AES_GCM) with the nonce and AAD ``crypto.blob``
gives, so a blob of a key in a token has the layout of every symmetric blob (format byte
``FORMAT_TOKEN``). Every call goes through ``Token.run`` and so through the one lock of
the process. Which token a key's store has, and whether the store is connected, is the
``StoreConnections`` the wiring gives: a store that is not CONNECTED, or whose token is
gone or refuses its login, makes the key Unavailable (KMSInvalidStateException "<key ARN>
is unavailable.", key-state table footnote [11]).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.mechanisms import GCMParams

from strongroom.domain.errors import (
    InvalidCiphertextException,
    KeyStoreError,
    KMSInvalidStateException,
    UnsupportedOperationException,
)
from strongroom.domain.keystate import UNAVAILABLE
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.base import NewMaterial, SymmetricOnly
from strongroom.keystores.pkcs11_token import (
    AES_KEY_TEMPLATE,
    Token,
    TokenError,
    TokenUnavailable,
)
from strongroom.storage.ports import Transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

KEY_BITS = 256
TAG_BITS = 128
ONLY_VERSION = 1
"""The one material version a key in a custom key store has (it never rotates)."""

# What a token answers for a GCM tag that does not verify or a ciphertext that cannot be one
# (SoftHSM2 says GeneralError, others EncryptedDataInvalid or FunctionFailed): the
# ciphertext is not one of the key's. ``Token.run`` has already told a missing token apart.
_NOT_OURS = (
    p11e.EncryptedDataInvalid,
    p11e.EncryptedDataLenRange,
    p11e.DataInvalid,
    p11e.DataLenRange,
    p11e.FunctionFailed,
    p11e.GeneralError,
)


class StoreConnections(Protocol):
    """The logged-in tokens of connected custom key stores (``services.store_tokens``)."""

    def token(self, store_id: str, key_arn: str) -> Token:
        """The store's logged-in token; KMSInvalidStateException "<key_arn> is unavailable."
        when the store is not CONNECTED or its token cannot be logged in to now."""
        ...

    def lost(self, store_id: str) -> None:
        """The store's token failed as configured (its login refused, its module gone): drop
        it, so the next use reads the store and logs in anew."""
        ...


class _InToken(NewMaterial):
    """Material generated inside the token by ``new_material``: nothing leaves it."""

    __slots__ = ()


_GENERATED = _InToken()


def _store_id(key: Key) -> str:
    if key.custom_key_store_id is None:
        raise KeyStoreError(f"{key.arn} is not in a custom key store")
    return key.custom_key_store_id


def _version_id(version: int) -> bytes:
    return version.to_bytes(4, "big")


class CloudHsmKeyStore(SymmetricOnly):
    """Keys of custom key stores of type AWS_CLOUDHSM, each in its store's PKCS#11 token."""

    where = "a custom key store"

    def __init__(self, connections: StoreConnections) -> None:
        self._connections = connections

    # --- the token ------------------------------------------------------------------------

    def _run(self, key: Key, fn: Callable[[Token, Any], T]) -> T:
        """``fn(token, session)`` on the token of ``key``'s store, under the process's token
        lock. KMSInvalidStateException (the key is unavailable) when the store is not
        connected or its token is gone; pkcs11 errors of ``fn`` itself propagate."""
        store_id = _store_id(key)
        token = self._connections.token(store_id, key.arn)
        try:
            return token.run(lambda session: fn(token, session))
        except TokenUnavailable:
            raise UNAVAILABLE(key.arn) from None
        except TokenError:
            self._connections.lost(store_id)
            raise UNAVAILABLE(key.arn) from None

    def available(self, key: Key, *, probe: bool = False) -> bool:
        """Whether ``key``'s store is connected and, with ``probe``, its token answers now
        (a look-up of the key's object inside the token, not a cached handle)."""
        try:
            if not probe:
                self._connections.token(_store_id(key), key.arn)
                return True
            self._run(
                key, lambda token, session: list(session.get_objects({Attribute.LABEL: key.arn}))
            )
        except KMSInvalidStateException:
            return False
        return True

    def _object(self, token: Token, session: Any, key: Key, version: int) -> Any:
        """The key object of ``version``; InvalidCiphertextException when the key has no
        such version (a ciphertext naming another is not one of the key's)."""
        if version != ONLY_VERSION:
            raise InvalidCiphertextException()
        try:
            return token.find_key(session, key.arn, KeyType.AES)
        except p11e.NoSuchKey:
            raise KeyStoreError(
                f"the token of {key.custom_key_store_id} has no key {key.arn}"
            ) from None

    # --- material lifecycle ------------------------------------------------------------------

    def new_material(self, key: Key, given: KeyBytes | None = None) -> NewMaterial:
        """Generate the key's AES-256 key inside its store's token (outside any database
        transaction, as the port asks). Given material is refused: material of a key in a
        custom key store never comes from outside the token."""
        if given is not None:
            raise UnsupportedOperationException(
                f"{key.arn} is in custom key store {key.custom_key_store_id}: its key "
                "material is generated in the store's token and cannot be imported."
            )
        self._run(key, lambda token, session: self._generate(session, key))
        return _GENERATED

    @staticmethod
    def _generate(session: Any, key: Key) -> None:
        session.generate_key(
            KeyType.AES,
            KEY_BITS,
            id=_version_id(ONLY_VERSION),
            label=key.arn,
            store=True,
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template=dict(AES_KEY_TEMPLATE),
        )

    def put_material(
        self, tx: Transaction, key: Key, version: int, material: NewMaterial, now: datetime
    ) -> None:
        """Nothing to write: the token keeps the object ``new_material`` made, and the
        version record the service writes names it."""
        if material is not _GENERATED or version != ONLY_VERSION:
            raise KeyStoreError(f"{key.arn}: material version {version} was not made in a token")

    def copy_material(
        self, tx: Transaction, source: Key, target: Key, versions: Iterable[int], now: datetime
    ) -> None:
        raise UnsupportedOperationException(
            f"{source.arn} is in a custom key store, which holds no multi-Region keys."
        )

    def same_material(self, tx: Transaction, key: Key, version: int, material: KeyBytes) -> bool:
        """Never: nothing outside the token can be the key's material."""
        return False

    def erase(self, tx: Transaction, key: Key, version: int) -> None:
        raise UnsupportedOperationException(
            f"{key.arn} is in a custom key store: it has no imported key material to delete."
        )

    def destroy(self, tx: Transaction, key: Key) -> None:
        """Nothing in the database: the token's object goes in ``discard``, after the
        deletion commits (a token call needs the store's state, which ``tx`` would lock)."""

    def discard(self, key: Key) -> None:
        """Destroy the key's objects in its store's token, as best it can: a store that is
        disconnected or a token that is gone leaves them there (AWS, DeleteCustomKeyStore:
        deletion "makes a best effort to delete the key material from the associated
        cluster. However, you might need to manually delete the orphaned key material"); the
        log names the label to delete by hand."""
        try:
            gone = self._run(key, lambda token, session: self._destroy(token, session, key))
        except (KMSInvalidStateException, KeyStoreError, p11e.PKCS11Error) as e:
            log.warning(
                "%s does not exist (deleted, or its creation failed), but its key material "
                "stays in the token of custom key store "
                "%s (%s): delete the object labelled %r there",
                key.arn,
                key.custom_key_store_id,
                "not available" if isinstance(e, KMSInvalidStateException) else type(e).__name__,
                key.arn,
            )
            return
        log.info("destroyed %d token object(s) of %s", gone, key.arn)

    @staticmethod
    def _destroy(token: Token, session: Any, key: Key) -> int:
        found = list(
            session.get_objects({Attribute.LABEL: key.arn, Attribute.CLASS: ObjectClass.SECRET_KEY})
        )
        for obj in found:
            obj.destroy()
        token.forget_key(key.arn)
        return len(found)

    def forget(self, arn: str) -> None:
        """Nothing cached here: object handles are the token session's (``Token``)."""

    def forget_all(self) -> None:
        """As ``forget``."""

    # --- symmetric encryption -----------------------------------------------------------------

    def encrypt(self, key: Key, version: int, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        def run(token: Token, session: Any) -> bytes:
            obj = self._object(token, session, key, version)
            sealed: bytes = obj.encrypt(
                plaintext,
                mechanism=Mechanism.AES_GCM,
                mechanism_param=GCMParams(nonce, aad, TAG_BITS),
            )
            return sealed

        try:
            return self._run(key, run)
        except p11e.PKCS11Error as e:
            raise KeyStoreError(f"the token refused to encrypt under {key.arn}: {e!r}") from None

    def decrypt(self, key: Key, version: int, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        def run(token: Token, session: Any) -> bytes:
            obj = self._object(token, session, key, version)
            opened: bytes = obj.decrypt(
                sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, TAG_BITS)
            )
            return opened

        try:
            return self._run(key, run)
        except _NOT_OURS:
            raise InvalidCiphertextException() from None
