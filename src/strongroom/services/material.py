"""Key material versions: made fresh, stored wrapped under the root key, unwrapped on demand.

Every key spec's material goes the same way (table ``key_materials``, AES-GCM under the
root key with the key ARN and version in the AAD): 32 random bytes for a symmetric
encryption key, the secret for an HMAC key, the PKCS#8 private key for a key pair. Once
unwrapped it stays in the process cache in the form its operations use (``cache.Material``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.asymmetric import KeyPair, generate_private_key, load_key_pair
from strongroom.crypto.context import encode_context
from strongroom.domain.enums import KeySpec
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes
from strongroom.services.cache import Material
from strongroom.services.core import Core
from strongroom.storage.ports import Transaction

M = TypeVar("M", AESGCM, KeyPair, KeyBytes)


def material_aad(key_arn: str, version: int) -> bytes:
    """The AAD that binds a wrapped material to its key and version."""
    return encode_context({"keyArn": key_arn, "version": str(version)})


def material_id(key_arn: str, version: int) -> str:
    """A stable 64-hex-digit id for a material version, the form of AWS's KeyMaterialId."""
    return hashlib.sha256(material_aad(key_arn, version)).hexdigest()


def new_material(spec: KeySpec) -> KeyBytes:
    """Fresh material for a key of ``spec``. Make it before opening a transaction: an RSA key
    takes up to a second. Raises UnsupportedOperationException for specs this build refuses."""
    return generate_private_key(spec)


def store_material(
    core: Core, tx: Transaction, key_arn: str, version: int, material: KeyBytes, now: datetime
) -> None:
    """Store ``material`` as ``version`` of the key, wrapped under the root key."""
    wrapped = core.root_key.wrap(material.value, material_aad(key_arn, version))
    tx.insert_material(key_arn, version, wrapped, now)


def stored_material(core: Core, tx: Transaction, key_arn: str, version: int) -> KeyBytes | None:
    """A material version of the key as stored, unwrapped; None when there is none."""
    wrapped = tx.get_material(key_arn, version)
    if wrapped is None:
        return None
    return KeyBytes(core.root_key.unwrap(wrapped, material_aad(key_arn, version)))


def symmetric_aead(core: Core, key: Key, version: int) -> AESGCM:
    """The AES-GCM instance for a material version, from the cache or unwrapped from storage.

    A version that does not exist, or a key that is not a symmetric encryption key, means
    the ciphertext is not one of this key's: InvalidCiphertextException.
    """
    aead = core.cache.material(key.arn, version)
    if isinstance(aead, AESGCM):
        return aead
    if key.key_spec is not KeySpec.SYMMETRIC_DEFAULT:
        raise InvalidCiphertextException()
    return _load(core, key, version, lambda raw: AESGCM(raw.value), missing=_no_ciphertext)


def key_pair(core: Core, key: Key) -> KeyPair:
    """The parsed key pair of an asymmetric key (one material version), cached per process."""
    found = core.cache.material(key.arn, key.current_version)
    if isinstance(found, KeyPair):
        return found
    return _load(
        core,
        key,
        key.current_version,
        lambda raw: load_key_pair(key.key_spec, raw),
        missing=_no_material,
    )


def hmac_secret(core: Core, key: Key) -> KeyBytes:
    """The secret of an HMAC key (one material version), cached per process."""
    found = core.cache.material(key.arn, key.current_version)
    if isinstance(found, KeyBytes):
        return found
    return _load(core, key, key.current_version, lambda raw: raw, missing=_no_material)


def _no_ciphertext(key: Key, version: int) -> Exception:
    return InvalidCiphertextException()


def _no_material(key: Key, version: int) -> Exception:
    return KeyStoreError(f"{key.arn} has no key material version {version}")


def _load(
    core: Core,
    key: Key,
    version: int,
    parse: Callable[[KeyBytes], M],
    *,
    missing: Callable[[Key, int], Exception],
) -> M:
    with core.store.transaction() as tx:
        wrapped = tx.get_material(key.arn, version)
    if wrapped is None:
        raise missing(key, version)
    loaded = parse(KeyBytes(core.root_key.unwrap(wrapped, material_aad(key.arn, version))))
    material: Material = loaded
    core.cache.put_material(key.arn, version, material)
    return loaded
