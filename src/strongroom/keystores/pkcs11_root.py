"""A root key inside a PKCS#11 token: no process ever holds it.

The key is an AES-256 secret key object generated in the token: sensitive, not
extractable, allowed to encrypt and decrypt (and nothing else), labelled as configured.
Every wrap and unwrap runs inside the token with CKM_AES_GCM, today's AAD and a random
12-byte nonce per wrap (format 0x02 of ``crypto/wrap.py``, which names the key by the first
8 bytes of its check value). Every call goes through ``Token.run`` (one process-wide lock;
a token that has gone gives ``TokenUnavailable``, a KeyStoreError, and is used again when
it returns).

Key check value (version 1), computed inside the token when the key is opened::

    probe       = AES-256-GCM_K(nonce="strongroomKC" (12 bytes),
                                aad="strongroom root key check",
                                plaintext=32 zero bytes)        # ciphertext || 16-byte tag
    check_value = SHA-256("strongroom pkcs11 root key check value v1" || probe)  # 32 bytes

GCM is deterministic for a fixed nonce, so the same key always gives the same value, and
only the key can give it. The probe is hashed, so the value in the database reveals not
even the probe (the GCM keystream of the fixed nonce); the fixed nonce is never the nonce
of a wrap except by a 2^-96 chance per wrap (wrap nonces are random), and a zero block,
whose encryption is GCM's hash key, is never encrypted on its own.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pkcs11
from pkcs11 import KeyType, Mechanism
from pkcs11 import exceptions as p11e
from pkcs11.mechanisms import GCMParams

from strongroom.crypto.wrap import KEY_ID_SIZE, NONCE_SIZE, TAG_SIZE, WRAP_V2, key_id
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.pkcs11_token import AES_KEY_TEMPLATE, Token, TokenError

_CHECK_NONCE = b"strongroomKC"
_CHECK_AAD = b"strongroom root key check"
_CHECK_PREFIX = b"strongroom pkcs11 root key check value v1"


class KeyNotFound(TokenError):
    """The token has no root key of the configured label."""


class Pkcs11RootKey:
    """The AES-256 root key labelled ``key_label`` in ``token``; ``generate`` makes one."""

    def __init__(self, token: Token, key_label: str) -> None:
        """Open the key and compute its check value in the token: TokenError (KeyNotFound,
        PinIncorrect, ...) naming what is wrong, TokenUnavailable when the token is not
        there."""
        self.token = token
        self.key_label = key_label
        self._check = token.run(self._compute_check)
        self.key_id = key_id(self._check)

    @classmethod
    def generate(cls, token: Token, key_label: str) -> Pkcs11RootKey:
        """Generate a new root key labelled ``key_label`` in the token; TokenError when the
        token already has a key of that label (a root key is never replaced)."""

        def make(session: Any) -> None:
            if _find(session, key_label) is not None:
                raise TokenError(
                    f"PKCS#11 token {token.label!r} already has a key labelled {key_label!r}"
                )
            session.generate_key(
                KeyType.AES, 256, label=key_label, store=True, template=dict(AES_KEY_TEMPLATE)
            )

        token.run(make)
        return cls(token, key_label)

    def __repr__(self) -> str:
        return f"Pkcs11RootKey({self.token!r}, key_label={self.key_label!r})"

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._call(
            lambda key: key.encrypt(
                secret, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad, 128)
            )
        )
        if len(sealed) != len(secret) + TAG_SIZE:
            raise KeyStoreError(f"PKCS#11 token {self.token.label!r} returned a malformed wrap")
        return bytes((WRAP_V2,)) + self.key_id + nonce + bytes(sealed)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        head = 1 + KEY_ID_SIZE
        if len(wrapped) < head + NONCE_SIZE + TAG_SIZE or wrapped[0] != WRAP_V2:
            raise KeyStoreError("wrapped value has an unknown format")
        if wrapped[1:head] != self.key_id:
            raise KeyStoreError("wrapped value is wrapped under another root key")
        nonce, sealed = wrapped[head : head + NONCE_SIZE], wrapped[head + NONCE_SIZE :]
        try:
            return bytes(
                self._call(
                    lambda key: key.decrypt(
                        sealed,
                        mechanism=Mechanism.AES_GCM,
                        mechanism_param=GCMParams(nonce, aad, 128),
                    )
                )
            )
        except _OperationFailed:
            raise KeyStoreError("wrapped value does not unwrap under this root key") from None

    def check_value(self) -> bytes:
        return self._check

    def destroy(self) -> None:
        """Destroy the key object in the token (after a rotation has re-wrapped everything
        under another key): what it wrapped can never be unwrapped again."""

        def destroy(session: Any) -> None:
            found = _find(session, self.key_label)
            if found is not None:
                found.destroy()

        self.token.run(destroy)
        self.token.forget_key(self.key_label)

    # -- inside the token -----------------------------------------------------------------

    def _compute_check(self, session: Any) -> bytes:
        key = self._key(session)
        probe = key.encrypt(
            bytes(32),
            mechanism=Mechanism.AES_GCM,
            mechanism_param=GCMParams(_CHECK_NONCE, _CHECK_AAD, 128),
        )
        return hashlib.sha256(_CHECK_PREFIX + bytes(probe)).digest()

    def _key(self, session: Any) -> Any:
        try:
            return self.token.find_key(session, self.key_label, KeyType.AES)
        except p11e.NoSuchKey:
            raise KeyNotFound(
                f"PKCS#11 token {self.token.label!r} has no AES key labelled {self.key_label!r}"
            ) from None
        except p11e.MultipleObjectsReturned:
            raise TokenError(
                f"PKCS#11 token {self.token.label!r} has more than one key labelled "
                f"{self.key_label!r}"
            ) from None

    def _call(self, op: Any) -> Any:
        """``op(key)`` in the token. An error of the operation on a token that is there
        becomes _OperationFailed; a token that is gone, TokenUnavailable."""

        def run(session: Any) -> Any:
            return op(self._key(session))

        try:
            return self.token.run(run)
        except KeyStoreError:
            raise
        except pkcs11.PKCS11Error as e:
            raise _OperationFailed(type(e).__name__) from None


class _OperationFailed(KeyStoreError):
    """The token refused the operation (a tag that does not verify, a wrong input)."""


def _find(session: Any, label: str) -> Any:
    try:
        return session.get_key(label=label, key_type=KeyType.AES)
    except p11e.NoSuchKey:
        return None
