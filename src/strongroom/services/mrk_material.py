"""Imported key material of multi-Region keys: every key of the set holds its own copy.

AWS KMS Developer Guide, "Importing key material into multi-Region keys": KMS does not copy
imported material from a primary key to its replicas; the same material is imported into
each key, each import has its own expiration, and the key states of related keys are
independent. ReplicateKey of such a primary makes a replica without material (ReplicateKey
doc). New material for on-demand rotation goes into the primary first, then the same
material into each replica; until every replica has it, the primary shows it as
PENDING_MULTI_REGION_IMPORT_AND_ROTATION, then PENDING_ROTATION (ImportKeyMaterial doc,
``RotationsListEntry.KeyMaterialState``).

Every key of such a set keeps a record of each material version of the set under the same
version number and KeyMaterialId (for a multi-Region key the id leaves the Region out), so
a ciphertext names a version that every related key resolves; the wrapped copy, its import
state and expiry are each key's own.
"""

from __future__ import annotations

from strongroom.domain.enums import ImportState, KeyMaterialState, MultiRegionKeyType, Origin
from strongroom.domain.errors import UnsupportedOperationException
from strongroom.domain.models import Key, MaterialVersion
from strongroom.services.core import Core
from strongroom.storage.ports import Transaction

PENDING = frozenset(
    {KeyMaterialState.PENDING_ROTATION, KeyMaterialState.PENDING_MULTI_REGION_IMPORT_AND_ROTATION}
)


def _in_set(key: Key) -> bool:
    return key.origin is Origin.EXTERNAL and key.primary_region is not None


def is_replica(key: Key) -> bool:
    return key.multi_region_type is MultiRegionKeyType.REPLICA


def check_new_material(key: Key) -> None:
    """New material goes into a multi-Region primary key, never straight into a replica
    (ImportKeyMaterial doc): UnsupportedOperationException."""
    if is_replica(key):
        raise UnsupportedOperationException(
            f"{key.arn} is a multi-Region replica key: import new key material into its "
            f"primary key in {key.primary_region}, then the same key material into this key "
            "with ImportType EXISTING_KEY_MATERIAL."
        )


def replicas_of(tx: Transaction, key: Key) -> list[Key]:
    """The replicas of ``key`` when it is the primary of a set with imported material."""
    if not _in_set(key) or is_replica(key):
        return []
    return [k for k in tx.keys.related(key.account, key.key_id) if is_replica(k)]


def _not_imported(info: MaterialVersion, arn: str) -> MaterialVersion:
    return info.evolve(
        key_arn=arn, import_state=ImportState.PENDING_IMPORT, expiration_model=None, valid_to=None
    )


def mirror_versions(tx: Transaction, primary: Key, replica_arn: str) -> None:
    """A new replica of ``primary`` (imported material) gets a record of each of its
    material versions, not imported: its key material is imported into it separately."""
    if not _in_set(primary):
        return
    for info in tx.material.versions(primary.arn):
        tx.material.insert_version(_not_imported(info, replica_arn))


def mirror_new_material(tx: Transaction, primary: Key, info: MaterialVersion) -> None:
    """New material imported into ``primary`` is awaited by each of its replicas."""
    for replica in replicas_of(tx, primary):
        known = {v.version for v in tx.material.versions(replica.arn)}
        if info.version not in known:
            tx.material.insert_version(_not_imported(info, replica.arn))


def drop_from_replicas(core: Core, tx: Transaction, primary: Key, version: int) -> None:
    """Pending material erased from a primary key leaves its replicas too
    (DeleteImportedKeyMaterial doc, "Considerations for multi-Region symmetric encryption
    keys"): their copies (erased from their store) and records."""
    for replica in replicas_of(tx, primary):
        core.keystores.for_key(replica).erase(tx, replica, version)
        tx.material.delete_version(replica.arn, version)


def sync_set(tx: Transaction, key: Key) -> list[str]:
    """After ``key``'s materials changed: the state of each pending material of its set
    (on the primary PENDING_ROTATION once every replica has imported it, else
    PENDING_MULTI_REGION_IMPORT_AND_ROTATION; on a replica PENDING_ROTATION). Returns the
    ARNs whose material records may have changed: the whole set, or ``key`` alone when it
    is not a multi-Region key with imported material."""
    if not _in_set(key):
        return [key.arn]
    related = tx.keys.related(key.account, key.key_id)
    replicas = [k for k in related if is_replica(k)]
    imported: list[set[int]] = []
    for replica in replicas:
        versions = tx.material.versions(replica.arn)
        for info in versions:
            if info.state is KeyMaterialState.PENDING_MULTI_REGION_IMPORT_AND_ROTATION:
                tx.material.update_version(info.evolve(state=KeyMaterialState.PENDING_ROTATION))
        imported.append({v.version for v in versions if v.import_state is ImportState.IMPORTED})
    for primary in (k for k in related if not is_replica(k)):
        for info in tx.material.versions(primary.arn):
            if info.state not in PENDING:
                continue
            everywhere = all(info.version in versions for versions in imported)
            state = (
                KeyMaterialState.PENDING_ROTATION
                if everywhere
                else KeyMaterialState.PENDING_MULTI_REGION_IMPORT_AND_ROTATION
            )
            if info.state is not state:
                tx.material.update_version(info.evolve(state=state))
    return [k.arn for k in related]
