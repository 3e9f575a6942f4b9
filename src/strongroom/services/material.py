"""Key material versions: made fresh, stored wrapped under the root key, unwrapped on demand."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.context import encode_context
from strongroom.domain.errors import InvalidCiphertextException
from strongroom.domain.models import Key
from strongroom.services.core import Core
from strongroom.storage.ports import Transaction

SYMMETRIC_KEY_BYTES = 32


def material_aad(key_arn: str, version: int) -> bytes:
    """The AAD that binds a wrapped material to its key and version."""
    return encode_context({"keyArn": key_arn, "version": str(version)})


def material_id(key_arn: str, version: int) -> str:
    """A stable 64-hex-digit id for a material version, the form of AWS's KeyMaterialId."""
    return hashlib.sha256(material_aad(key_arn, version)).hexdigest()


def add_symmetric_material(
    core: Core, tx: Transaction, key_arn: str, version: int, now: datetime
) -> None:
    """Generate 256-bit material for ``version`` and store it wrapped."""
    material = os.urandom(SYMMETRIC_KEY_BYTES)
    tx.insert_material(
        key_arn, version, core.root_key.wrap(material, material_aad(key_arn, version)), now
    )


def symmetric_aead(core: Core, key: Key, version: int) -> AESGCM:
    """The AES-GCM instance for a material version, from the cache or unwrapped from storage.

    A version that does not exist means the ciphertext is not one of this key's:
    InvalidCiphertextException.
    """
    aead = core.cache.material(key.arn, version)
    if aead is not None:
        return aead
    with core.store.transaction() as tx:
        wrapped = tx.get_material(key.arn, version)
    if wrapped is None:
        raise InvalidCiphertextException()
    aead = AESGCM(core.root_key.unwrap(wrapped, material_aad(key.arn, version)))
    core.cache.put_material(key.arn, version, aead)
    return aead
