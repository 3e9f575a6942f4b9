"""Wrapping of secrets at rest under a root key: AES-256-GCM with a caller-given AAD.

Layout of a wrapped value::

    offset  size  field
    0       1     format version, 0x01
    1       12    nonce, random per wrap
    13      m     ciphertext, as long as the secret
    13+m    16    GCM tag

A root key held in a PKCS#11 token (``keystores/pkcs11_root.py``) wraps in the same way
inside the token, and names itself in the value, so that a server holding several root keys
(during a migration or a rotation: ``keystores/ring.RootKeyRing``) knows which one
unwraps it::

    offset  size  field
    0       1     format version, 0x02
    1       8     root key id: the first 8 bytes of the root key's check value
    9       12    nonce, random per wrap
    21      m     ciphertext
    21+m    16    GCM tag

A 0x01 value is wrapped under the database's file root key (the only root key there was
before 0x02).

The AAD names what the secret belongs to (for key material: the key ARN and the
material version), so a wrapped value copied onto another row does not unwrap.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.context import encode_context
from strongroom.domain.errors import KeyStoreError

WRAP_V1 = 1
WRAP_V2 = 2
KEY_ID_SIZE = 8
NONCE_SIZE = 12
TAG_SIZE = 16
_NONCE = NONCE_SIZE


def key_id(check_value: bytes) -> bytes:
    """The short id a 0x02 wrapped value names its root key by."""
    return check_value[:KEY_ID_SIZE]


def wrapped_key_id(wrapped: bytes) -> bytes | None:
    """The root key id of a 0x02 value; None for a 0x01 value (the file root key);
    KeyStoreError for anything else."""
    if wrapped[:1] == bytes((WRAP_V1,)):
        return None
    if wrapped[:1] == bytes((WRAP_V2,)) and len(wrapped) >= 1 + KEY_ID_SIZE + _NONCE + TAG_SIZE:
        return wrapped[1 : 1 + KEY_ID_SIZE]
    raise KeyStoreError("wrapped value has an unknown format")


def material_aad(key_arn: str, version: int) -> bytes:
    """The AAD that binds a wrapped material version to its key and version."""
    return encode_context({"keyArn": key_arn, "version": str(version)})


def wrap(aead: AESGCM, secret: bytes, aad: bytes) -> bytes:
    """Encrypt ``secret`` for storage."""
    nonce = os.urandom(_NONCE)
    return bytes((WRAP_V1,)) + nonce + aead.encrypt(nonce, secret, aad)


def unwrap(aead: AESGCM, wrapped: bytes, aad: bytes) -> bytes:
    """Decrypt a wrapped secret; raises KeyStoreError (an internal error) when it fails,
    because stored data that does not unwrap means a wrong root key or tampering."""
    if len(wrapped) < 1 + _NONCE + 16 or wrapped[0] != WRAP_V1:
        raise KeyStoreError("wrapped value has an unknown format")
    try:
        return aead.decrypt(wrapped[1 : 1 + _NONCE], wrapped[1 + _NONCE :], aad)
    except InvalidTag:
        raise KeyStoreError("wrapped value does not unwrap under this root key") from None
