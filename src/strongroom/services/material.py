"""Key material versions as the services see them: which version is current, the
KeyMaterialId of each, the version records of rotation and replication. The material
itself is the key's store's (``keystores``: ``core.keystores.for_key(key)``).

A multi-Region replica of a key whose material KMS generated has no versions of its own:
it reads every version, and the current version number, through its primary key
(``material_source``), so a version added to the primary is at once usable in every Region.
Imported material is each key's own, replicas included (``services.mrk_material``).
"""

from __future__ import annotations

from datetime import datetime

from strongroom.crypto.key_import import generated_material_id, material_id_arn
from strongroom.domain.enums import KeyMaterialState, Origin, RotationType
from strongroom.domain.errors import KeyStoreError
from strongroom.domain.ids import key_arn
from strongroom.domain.models import Key, MaterialVersion
from strongroom.keystores.base import NewMaterial
from strongroom.services.core import Core
from strongroom.services.loading import load_key
from strongroom.storage.ports import Transaction


def material_source(core: Core, key: Key) -> Key:
    """The key whose ARN holds ``key``'s material versions and current version number: the
    key itself, or, for a multi-Region replica of generated material, its primary (AWS
    copies the primary's material to its replicas; here they read it from there). Imported
    material AWS does not copy: each key of the set has its own. The software key store
    reads a replica's material rows by the same rule (``keystores.software.material_arn``)."""
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


def material_id_of(core: Core, key: Key, version: int) -> str:
    """The KeyMaterialId of a version of ``key``: from the key record for its current
    version, derived for generated material (``KeyCache.generated_material_id``: a cached
    record leaves it out), looked up once per process for the older versions of imported
    material. A multi-Region replica's ids are its primary's."""
    key = material_source(core, key)
    if version == key.current_version and key.current_material_id is not None:
        return key.current_material_id
    if key.origin is Origin.AWS_KMS:  # the cached record leaves it out (``KeyCache``)
        return core.cache.generated_material_id(key, version)
    found = core.cache.material_id(key.arn, version)
    if found is None:
        with core.store.read() as tx:
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
    material: NewMaterial,
    now: datetime,
    rotation: RotationType | None = None,
) -> Key:
    """Store ``material`` (from the key's store) as the next version of ``key`` and make it
    current (the previous current version stays for decryption); ``rotation`` says which
    rotation made it (None for the first material). Returns the key record to write."""
    version = key.current_version + 1
    for info in tx.material.versions(key.arn):
        if info.state is KeyMaterialState.CURRENT:
            tx.material.update_version(info.evolve(state=KeyMaterialState.NON_CURRENT))
    core.keystores.for_key(key).put_material(tx, key, version, material, now)
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
