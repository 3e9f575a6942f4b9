"""Key material versions: made fresh, stored wrapped under the root key, unwrapped on demand.

Every key spec's material goes the same way (table ``key_materials``, AES-GCM under the
root key with the key ARN and version in the AAD): 32 random bytes for a symmetric
encryption key, the secret for an HMAC key, the PKCS#8 private key for a key pair. Once
unwrapped it stays in the process cache in the form its operations use (``cache.Material``).

A multi-Region replica of a key whose material KMS generated has no material rows of its
own: it reads every version, and the current version number, through its primary key
(``material_source``), so a version added to the primary is at once usable in every Region.
Imported material is each key's own, replicas included (``services.mrk_material``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.asymmetric import KeyPair, generate_private_key, load_key_pair
from strongroom.crypto.context import encode_context
from strongroom.crypto.key_import import generated_material_id
from strongroom.domain.enums import KeyMaterialState, KeySpec, Origin, RotationType, SpecFamily
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError
from strongroom.domain.ids import key_arn
from strongroom.domain.models import Key, MaterialVersion
from strongroom.domain.secrets import KeyBytes
from strongroom.services.cache import Material
from strongroom.services.core import Core
from strongroom.services.loading import load_key
from strongroom.storage.ports import Transaction

M = TypeVar("M", AESGCM, KeyPair, KeyBytes)


def material_aad(key_arn: str, version: int) -> bytes:
    """The AAD that binds a wrapped material to its key and version."""
    return encode_context({"keyArn": key_arn, "version": str(version)})


def material_source(core: Core, key: Key) -> Key:
    """The key whose ARN holds ``key``'s material versions and current version number: the
    key itself, or, for a multi-Region replica of generated material, its primary (AWS
    copies the primary's material to its replicas; here they read it from there). Imported
    material AWS does not copy: each key of the set has its own."""
    if (
        key.primary_region is None
        or key.primary_region == key.region
        or key.origin is Origin.EXTERNAL
    ):
        return key
    return load_key(core, key_arn(key.primary_region, key.account, key.key_id))


def current_version(core: Core, key: Key) -> int:
    """The material version new ciphertexts of ``key`` use (its primary's, for a replica)."""
    return material_source(core, key).current_version


def material_id_arn(key: Key) -> str:
    """The ARN that KeyMaterialIds derive from: for a multi-Region key the Region is left
    out, so every related key shows the same ids for the material they share (AWS: the id
    derives from the key ID and the material)."""
    return key.arn if key.primary_region is None else key_arn("", key.account, key.key_id)


def material_id_of(core: Core, key: Key, version: int) -> str:
    """The KeyMaterialId of a version of ``key``: from the key record for its current
    version, derived for generated material, looked up once per process for the older
    versions of imported material. A multi-Region replica's ids are its primary's."""
    key = material_source(core, key)
    if version == key.current_version and key.current_material_id is not None:
        return key.current_material_id
    if key.origin is Origin.AWS_KMS:
        return generated_material_id(material_id_arn(key), version)
    found = core.cache.material_id(key.arn, version)
    if found is None:
        with core.store.transaction() as tx:
            versions = tx.material.versions(key.arn)
        for info in versions:
            core.cache.put_material_id(key.arn, info.version, info.material_id)
        found = core.cache.material_id(key.arn, version)
    if found is None:
        raise KeyStoreError(f"{key.arn} has no key material version {version}")
    return found


def add_generated_version(
    core: Core,
    tx: Transaction,
    key: Key,
    material: KeyBytes,
    now: datetime,
    rotation: RotationType | None = None,
) -> Key:
    """Store ``material`` as the next version of ``key`` and make it current (the previous
    current version stays for decryption); ``rotation`` says which rotation made it (None for
    the first material). Returns the key record to write."""
    version = key.current_version + 1
    for info in tx.material.versions(key.arn):
        if info.state is KeyMaterialState.CURRENT:
            tx.material.update_version(info.evolve(state=KeyMaterialState.NON_CURRENT))
    store_material(core, tx, key.arn, version, material, now)
    material_id = generated_material_id(material_id_arn(key), version)
    tx.material.insert_version(
        MaterialVersion(
            key_arn=key.arn,
            version=version,
            material_id=material_id,
            state=KeyMaterialState.CURRENT,
            created=now,
            rotation_date=None if rotation is None else now,
            rotation_type=rotation,
        )
    )
    return key.evolve(current_version=version, current_material_id=material_id)


def new_material(spec: KeySpec) -> KeyBytes:
    """Fresh material for a key of ``spec``. Make it before opening a transaction: an RSA key
    takes up to a second. Raises UnsupportedOperationException for specs this build refuses."""
    return generate_private_key(spec)


def store_material(
    core: Core, tx: Transaction, key_arn: str, version: int, material: KeyBytes, now: datetime
) -> None:
    """Store ``material`` as ``version`` of the key, wrapped under the root key."""
    wrapped = core.root_key.wrap(material.value, material_aad(key_arn, version))
    tx.material.insert(key_arn, version, wrapped, now)


def copy_material(
    core: Core,
    tx: Transaction,
    source_arn: str,
    target_arn: str,
    versions: Iterable[int],
    now: datetime,
) -> None:
    """Store each of ``versions`` that ``target_arn`` lacks and ``source_arn`` has under
    ``target_arn`` too, re-wrapped with the target's ARN in the AAD."""
    for version in versions:
        if tx.material.get(target_arn, version) is not None:
            continue
        wrapped = tx.material.get(source_arn, version)
        if wrapped is None:
            continue
        raw = core.root_key.unwrap(wrapped, material_aad(source_arn, version))
        store_material(core, tx, target_arn, version, KeyBytes(raw), now)


def copy_versions(tx: Transaction, source_arn: str, target_arn: str) -> None:
    """Make ``target_arn``'s material version records (its ListKeyRotations history) those
    of ``source_arn``."""
    have = {v.version for v in tx.material.versions(target_arn)}
    for info in tx.material.versions(source_arn):
        copy = info.evolve(key_arn=target_arn)
        if info.version in have:
            tx.material.update_version(copy)
        else:
            tx.material.insert_version(copy)


def stored_material(core: Core, tx: Transaction, key_arn: str, version: int) -> KeyBytes | None:
    """A material version of the key as stored, unwrapped; None when there is none."""
    wrapped = tx.material.get(key_arn, version)
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
    if key.key_spec.family is not SpecFamily.SYMMETRIC:
        raise InvalidCiphertextException()
    return _load(core, key, version, lambda raw: AESGCM(raw.value), missing=_no_ciphertext)


def key_pair(core: Core, key: Key) -> KeyPair:
    """The parsed key pair of an asymmetric key (one material version), cached per process."""
    version = current_version(core, key)
    found = core.cache.material(key.arn, version)
    if isinstance(found, KeyPair):
        return found
    return _load(
        core, key, version, lambda raw: load_key_pair(key.key_spec, raw), missing=_no_material
    )


def hmac_secret(core: Core, key: Key) -> KeyBytes:
    """The secret of an HMAC key (one material version), cached per process."""
    version = current_version(core, key)
    found = core.cache.material(key.arn, version)
    if isinstance(found, KeyBytes):
        return found
    return _load(core, key, version, lambda raw: raw, missing=_no_material)


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
    """Unwrap a version from the rows of ``key``'s material source; cache it under ``key``."""
    source = material_source(core, key).arn
    generation = core.cache.generation
    with core.store.transaction() as tx:
        wrapped = tx.material.get(source, version)
    if wrapped is None:
        raise missing(key, version)
    loaded = parse(KeyBytes(core.root_key.unwrap(wrapped, material_aad(source, version))))
    material: Material = loaded
    core.cache.put_material(key.arn, version, material, generation)
    return loaded
