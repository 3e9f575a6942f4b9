"""Imported key material (origin EXTERNAL): import parameters, import, deletion and expiry.

AWS KMS Developer Guide, "Importing key material" and the model's GetParametersForImport,
ImportKeyMaterial and DeleteImportedKeyMaterial docs. The first material imported into a
key becomes current and permanently associated with it; a symmetric encryption key can
take more (ImportType NEW_KEY_MATERIAL: PENDING_ROTATION until RotateKeyOnDemand). The key
is usable only while every permanently associated material is imported.

Deleting imported material, by DeleteImportedKeyMaterial or when its ValidTo passes,
deletes its wrapped copy from storage and from every process's cache (through the change
feed): cryptographic erasure. What is known of it (``MaterialVersion``) stays, so that
re-importing the same material, which only its owner still holds, brings the key back.

Each key of a multi-Region set holds its own imported material, expiry and state
(``services.mrk_material``): a replica takes the same material as its primary, and erasing
material from one key leaves the related keys as they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from strongroom.crypto.context import encode_context
from strongroom.crypto.key_import import (
    canonical_material,
    check_wrapping,
    imported_material_id,
    material_id_arn,
    new_import_token,
    new_wrapping_key,
    token_digest,
    token_expiry,
    unwrap_material,
)
from strongroom.domain.enums import (
    ExpirationModel,
    ImportState,
    ImportType,
    KeyMaterialState,
    KeyState,
    Origin,
    SpecFamily,
    WrappingAlgorithm,
    WrappingKeySpec,
)
from strongroom.domain.errors import (
    ExpiredImportTokenException,
    IncorrectKeyMaterialException,
    InvalidImportTokenException,
    KMSInvalidStateException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.models import Key, MaterialVersion
from strongroom.domain.operations import Operation, check_state
from strongroom.domain.secrets import KeyBytes
from strongroom.keystores.base import NewMaterial
from strongroom.services.access import authorize_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.mrk_material import (
    PENDING,
    check_new_material,
    drop_from_replicas,
    is_replica,
    mirror_new_material,
    sync_set,
)
from strongroom.services.resolve import resolve_key
from strongroom.services.service_events import ServiceChange, announce, key_details, record
from strongroom.storage.ports import ImportTokenRecord, Transaction

log = logging.getLogger(__name__)

TOKEN_VALIDITY = timedelta(hours=24)
MAX_VALID_TO = timedelta(days=365)
EXPIRES = ExpirationModel.KEY_MATERIAL_EXPIRES
PERMANENT = frozenset({KeyMaterialState.CURRENT, KeyMaterialState.NON_CURRENT})
_GOING_AWAY = frozenset({KeyState.PENDING_DELETION, KeyState.PENDING_REPLICA_DELETION})


@dataclass(frozen=True, slots=True)
class ImportParameters:
    """GetParametersForImport's answer: the wrapping public key (DER SubjectPublicKeyInfo)
    and the import token that goes with it, both valid until ``valid_to``."""

    key: Key
    import_token: bytes
    public_key: bytes
    valid_to: datetime


@dataclass(frozen=True, slots=True)
class Expiry:
    """How one import of key material expires: ExpirationModel and ValidTo."""

    model: ExpirationModel
    valid_to: datetime | None


def check_external(key: Key) -> None:
    """UnsupportedOperationException unless ``key`` takes imported material (footnote [9])."""
    if key.origin is not Origin.EXTERNAL:
        raise UnsupportedOperationException(
            f"{key.arn} origin is {key.origin} which is not valid for this operation."
        )


def get_parameters_for_import(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    algorithm: WrappingAlgorithm,
    wrapping_spec: WrappingKeySpec,
) -> ImportParameters:
    """A fresh wrapping key pair and import token for ``key_id``, valid 24 hours; the
    private key is kept wrapped under the root key, found by the token's digest.

    Raises NotFoundException, AccessDeniedException, UnsupportedOperationException (not an
    EXTERNAL key; withdrawn or China-only wrapping), KMSInvalidStateException,
    ValidationException (a wrapping algorithm that cannot carry the key's material)."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "GetParametersForImport", key)
    check_external(key)
    check_state(Operation.GET_PARAMETERS_FOR_IMPORT, key)
    check_wrapping(key.key_spec, algorithm, wrapping_spec)
    private, public = new_wrapping_key(wrapping_spec)  # outside the transaction: RSA is slow
    now = core.clock()
    valid_to = now + TOKEN_VALIDITY
    token = new_import_token(valid_to)
    digest = token_digest(token)
    record = ImportTokenRecord(
        token_digest=digest,
        key_arn=key.arn,
        wrapping_algorithm=algorithm,
        wrapping_key_spec=wrapping_spec,
        wrapped_private_key=core.root_key.wrap(private.value, token_aad(digest, key.arn)),
        valid_to=valid_to,
        created=now,
    )
    with core.store.transaction() as tx:
        tx.material.insert_import_token(record)
    return ImportParameters(key, token, public, valid_to)


def token_aad(digest: str, key_arn: str) -> bytes:
    return encode_context({"importToken": digest, "keyArn": key_arn})


def _token_parameters(core: Core, key: Key, token: bytes, now: datetime) -> ImportTokenRecord:
    """The parameters behind ``token`` if it is valid for ``key`` now; the expiry a token
    carries tells an expired token from an unknown one once its parameters are pruned."""
    with core.store.transaction() as tx:
        record = tx.material.get_import_token(token_digest(token))
    if record is None:
        expiry = token_expiry(token)
        if expiry is not None and expiry <= now:
            raise _expired_token()
        raise InvalidImportTokenException("The import token is invalid.")
    if record.valid_to <= now:
        raise _expired_token()
    if record.key_arn != key.arn:
        raise InvalidImportTokenException(
            f"The import token is associated with a different KMS key than {key.arn}."
        )
    return record


def _expired_token() -> ExpiredImportTokenException:
    return ExpiredImportTokenException(
        "The import token has expired. Use GetParametersForImport to get a new import token "
        "and public key."
    )


def check_expiry(model: ExpirationModel, valid_to: datetime | None, now: datetime) -> Expiry:
    """ImportKeyMaterial's ExpirationModel and ValidTo rules (ImportKeyMaterialRequest doc):
    ValidTo is required with KEY_MATERIAL_EXPIRES, forbidden otherwise, in the future and at
    most 365 days ahead. ValidationException otherwise."""
    if model is EXPIRES and valid_to is None:
        raise ValidationException(
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
        )
    if model is not EXPIRES:
        if valid_to is not None:
            raise ValidationException(
                "A validTo date must not be set if the ExpirationModel is "
                "KEY_MATERIAL_DOES_NOT_EXPIRE"
            )
        return Expiry(model, None)
    assert valid_to is not None
    if valid_to <= now:
        raise ValidationException("The validTo date must be in the future.")
    if valid_to > now + MAX_VALID_TO:
        raise ValidationException(
            "The validTo date must be no more than 365 days from the current date."
        )
    return Expiry(model, valid_to)


def _check_symmetric_only(
    key: Key,
    import_type: ImportType | None,
    material_id: str | None,
    description: str | None,
) -> None:
    """ImportType, KeyMaterialId and KeyMaterialDescription are "only usable with symmetric
    encryption keys"; a key material id names material already there."""
    if key.key_spec.family is not SpecFamily.SYMMETRIC:
        for name, value in (
            ("ImportType", import_type),
            ("KeyMaterialId", material_id),
            ("KeyMaterialDescription", description),
        ):
            if value is not None:
                raise ValidationException(
                    f"{name} is only usable with symmetric encryption keys; {key.arn} is a "
                    f"{key.key_spec} key."
                )
    if import_type is ImportType.NEW_KEY_MATERIAL and material_id is not None:
        raise ValidationException(
            "You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL."
        )


@dataclass(frozen=True, slots=True)
class Import:
    """What one ImportKeyMaterial request brings, unwrapped and checked."""

    material: NewMaterial  # made by the key's store from the unwrapped material
    material_id: str
    expiry: Expiry
    description: str | None


def import_key_material(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    import_token: bytes,
    encrypted_material: bytes,
    expiration_model: ExpirationModel | None = None,
    valid_to: datetime | None = None,
    import_type: ImportType | None = None,
    material_id: str | None = None,
    description: str | None = None,
) -> tuple[Key, str]:
    """Import (or re-import) key material; returns the key and the KeyMaterialId.

    Raises ValidationException, NotFoundException, AccessDeniedException,
    UnsupportedOperationException, KMSInvalidStateException, InvalidImportTokenException,
    ExpiredImportTokenException, InvalidCiphertextException (the material does not unwrap)
    and IncorrectKeyMaterialException (not material of the key's spec, not the material
    previously imported, or new material already associated with the key)."""
    now = core.clock()
    expiry = check_expiry(expiration_model or EXPIRES, valid_to, now)
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "ImportKeyMaterial", key)
    check_external(key)
    check_state(Operation.IMPORT_KEY_MATERIAL, key)
    _check_symmetric_only(key, import_type, material_id, description)
    if import_type is ImportType.NEW_KEY_MATERIAL:
        check_new_material(key)
    record = _token_parameters(core, key, import_token, now)
    wrapping_key = KeyBytes(
        core.root_key.unwrap(record.wrapped_private_key, token_aad(record.token_digest, key.arn))
    )
    unwrapped = unwrap_material(
        record.wrapping_algorithm, record.wrapping_key_spec, wrapping_key, encrypted_material
    )
    material = canonical_material(key.key_spec, unwrapped)
    computed = imported_material_id(material_id_arn(key), material)
    if material_id is not None and material_id != computed:
        raise IncorrectKeyMaterialException(
            f"The key material does not match key material {material_id} of {key.arn}."
        )
    store = core.keystores.for_key(key)
    change = Import(store.new_material(key, material), computed, expiry, description)
    with core.store.transaction() as tx:
        current = tx.keys.get(key.arn, for_update=True)
        if current is None:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        check_state(Operation.IMPORT_KEY_MATERIAL, current)
        versions = tx.material.versions(key.arn)
        kind = import_type or (
            ImportType.EXISTING_KEY_MATERIAL if versions else ImportType.NEW_KEY_MATERIAL
        )
        if kind is ImportType.NEW_KEY_MATERIAL:
            updated = _import_new(core, tx, current, versions, change, now)
        else:
            updated = _reimport(core, tx, current, versions, change, now)
        updated = settle(tx, updated)
        tx.keys.update(updated)
        changed = record_changes(tx, updated, now)
    forget(core, changed)
    return updated, computed


def _import_new(
    core: Core,
    tx: Transaction,
    key: Key,
    versions: list[MaterialVersion],
    change: Import,
    now: datetime,
) -> Key:
    """New material: the key's first (current from now on) or, for a symmetric encryption
    key that has some, the one RotateKeyOnDemand makes current next."""
    if any(v.material_id == change.material_id for v in versions):
        raise IncorrectKeyMaterialException(
            f"The key material is already associated with {key.arn}; import it with "
            "ImportType EXISTING_KEY_MATERIAL."
        )
    pending = [v for v in versions if v.state in PENDING]
    if pending:
        raise KMSInvalidStateException(
            f"New key material (id: {change.material_id}) cannot be imported into KMS key "
            f"{key.arn}, because another key material (id: {pending[0].material_id}) is "
            "pending rotation."
        )
    version = max((v.version for v in versions), default=0) + 1
    first = not versions
    core.keystores.for_key(key).put_material(tx, key, version, change.material, now)
    info = MaterialVersion(
        key_arn=key.arn,
        version=version,
        material_id=change.material_id,
        state=KeyMaterialState.CURRENT if first else KeyMaterialState.PENDING_ROTATION,
        created=now,
        import_state=ImportState.IMPORTED,
        expiration_model=change.expiry.model,
        valid_to=change.expiry.valid_to,
        description=change.description,
    )
    tx.material.insert_version(info)
    mirror_new_material(tx, key, info)
    if not first:
        return key
    return key.evolve(current_version=version, current_material_id=change.material_id)


def _reimport(
    core: Core,
    tx: Transaction,
    key: Key,
    versions: list[MaterialVersion],
    change: Import,
    now: datetime,
) -> Key:
    """Material the key had before: restored if it was deleted or expired, with the expiry
    of this import either way."""
    target = next((v for v in versions if v.material_id == change.material_id), None)
    if target is None:
        raise IncorrectKeyMaterialException(
            f"The key material is not key material previously imported into {key.arn}."
        )
    if target.import_state is not ImportState.IMPORTED:
        store = core.keystores.for_key(key)
        store.put_material(tx, key, target.version, change.material, now)
    tx.material.update_version(
        target.evolve(
            import_state=ImportState.IMPORTED,
            expiration_model=change.expiry.model,
            valid_to=change.expiry.valid_to,
            description=change.description or target.description,
        )
    )
    return key


def settle(tx: Transaction, key: Key) -> Key:
    """The key after its materials changed: PendingImport turns Enabled once every
    permanently associated material is imported, and KeyMetadata's ExpirationModel and
    ValidTo (the earliest expiry of that material) follow."""
    permanent = [v for v in tx.material.versions(key.arn) if v.state in PERMANENT]
    imported = [v for v in permanent if v.import_state is ImportState.IMPORTED]
    state = key.state
    if state is KeyState.PENDING_IMPORT and permanent and len(imported) == len(permanent):
        state = KeyState.ENABLED
    expiring = [v.valid_to for v in imported if v.valid_to is not None]
    if expiring:
        return key.evolve(state=state, expiration_model=EXPIRES, valid_to=min(expiring))
    model = ExpirationModel.KEY_MATERIAL_DOES_NOT_EXPIRE if imported else None
    return key.evolve(state=state, expiration_model=model, valid_to=None)


def delete_imported_material(
    core: Core, ctx: RequestContext, key_id: str, material_id: str | None = None
) -> tuple[Key, str | None]:
    """DeleteImportedKeyMaterial: erase the named (default: current) imported material.
    Returns the key and the id of the material deleted (None when there was none to
    delete: "no effect" on a key pending import).

    Raises NotFoundException (also for a material id the key does not have),
    AccessDeniedException, UnsupportedOperationException, KMSInvalidStateException."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "DeleteImportedKeyMaterial", key)
    check_external(key)
    now = core.clock()
    with core.store.transaction() as tx:
        current = tx.keys.get(key.arn, for_update=True)
        if current is None:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        check_state(Operation.DELETE_IMPORTED_KEY_MATERIAL, current)
        versions = tx.material.versions(key.arn)
        if material_id is None:
            target = next((v for v in versions if v.version == current.current_version), None)
        else:
            target = next((v for v in versions if v.material_id == material_id), None)
            if target is None:
                raise NotFoundException(
                    f"Key material {material_id} is not associated with {key.arn}."
                )
        if target is None or target.import_state is not ImportState.IMPORTED:
            return current, None if target is None else target.material_id
        updated = settle(tx, erase(core, tx, current, target))
        tx.keys.update(updated)
        changed = record_changes(tx, updated, now)
    forget(core, changed)
    log.info("deleted imported key material %s of %s", target.material_id, key.arn)
    return updated, target.material_id


def erase(core: Core, tx: Transaction, key: Key, target: MaterialVersion) -> Key:
    """Erase imported material from the key's store. Material pending rotation was never
    associated with the key for good and goes entirely, from a multi-Region primary's
    replicas too (a replica keeps awaiting it: its primary still has it); permanently
    associated material becomes PENDING_IMPORT and takes the key with it (but a key pending
    deletion stays so, DeleteImportedKeyMaterial doc)."""
    core.keystores.for_key(key).erase(tx, key, target.version)
    if target.state not in PERMANENT and not is_replica(key):
        tx.material.delete_version(key.arn, target.version)
        drop_from_replicas(core, tx, key, target.version)
        return key
    tx.material.update_version(
        target.evolve(import_state=ImportState.PENDING_IMPORT, expiration_model=None, valid_to=None)
    )
    if target.state not in PERMANENT or key.state in _GOING_AWAY:
        return key
    return key.evolve(state=KeyState.PENDING_IMPORT)


def expire_due_materials(core: Core) -> int:
    """Erase every imported material whose ValidTo has passed, as DeleteImportedKeyMaterial
    would, and prune import parameters that expired. Run by the scheduler; returns how many
    materials it erased."""
    now = core.clock()
    with core.store.transaction() as tx:
        due = tx.material.due_to_expire(now)
    erased = 0
    for info in due:
        with core.store.transaction() as tx:
            key = tx.keys.get(info.key_arn, for_update=True)
            fresh = next(
                (v for v in tx.material.versions(info.key_arn) if v.version == info.version),
                None,
            )
            # Another process may have run first, or the material been re-imported meanwhile.
            if key is None or fresh is None or fresh.import_state is not ImportState.IMPORTED:
                continue
            if fresh.valid_to is None or fresh.valid_to > now:
                continue
            expiry = ServiceChange("DeleteExpiredKeyMaterial", key.arn, now)
            expiry.details = key_details(key.arn, keyMaterialId=info.material_id)
            announce(core, [expiry])
            updated = settle(tx, erase(core, tx, key, fresh))
            tx.keys.update(updated)
            changed = record_changes(tx, updated, now)
        forget(core, changed)
        record(core, [expiry])
        erased += 1
        log.info("imported key material %s of %s expired", info.material_id, info.key_arn)
    with core.store.transaction() as tx:
        tx.material.prune_import_tokens(now)
    return erased


def record_changes(tx: Transaction, key: Key, now: datetime) -> list[str]:
    """After ``key``'s materials changed: bring its multi-Region set in line and record a
    change of every key whose materials may have changed; returns their ARNs."""
    changed = sync_set(tx, key)
    for arn in changed:
        tx.changes.record(arn, now)
    return changed


def forget(core: Core, arns: list[str]) -> None:
    """Drop what this process cached of the keys once their change is committed."""
    for arn in arns:
        core.cache.invalidate(arn)
