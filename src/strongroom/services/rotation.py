"""Key rotation: automatic (EnableKeyRotation and the scheduled job), on demand, and the list
of a key's material versions.

AWS KMS Developer Guide, "Rotate AWS KMS keys", and the model's EnableKeyRotation,
GetKeyRotationStatus, RotateKeyOnDemand and ListKeyRotations docs. A rotation adds a
material version and makes it current; the key id, ARN, aliases and policy stay, and every
earlier version stays for Decrypt (the ciphertext names its version). Only symmetric
encryption keys rotate; automatic rotation only with material KMS generates; on-demand
rotation of a key with imported material makes current the material imported for it
(ImportType NEW_KEY_MATERIAL); for a multi-Region key, once every replica has it too, and
the rotation on the primary makes it current in every key of the set. A disabled key is not
rotated; once enabled again, a key whose rotation date passed meanwhile rotates at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from strongroom.domain.enums import (
    IncludeKeyMaterial,
    KeyMaterialState,
    KeyState,
    MultiRegionKeyType,
    Origin,
    RotationType,
    SpecFamily,
)
from strongroom.domain.errors import (
    ConflictException,
    KMSInvalidStateException,
    LimitExceededException,
    NotFoundException,
    UnsupportedOperationException,
)
from strongroom.domain.models import Key, MaterialVersion
from strongroom.domain.operations import Operation, check_state
from strongroom.services.access import authorize_key
from strongroom.services.core import Core, RequestContext
from strongroom.services.imports import forget, record_changes, settle
from strongroom.services.keys import change_key
from strongroom.services.material import add_generated_version, material_source
from strongroom.services.mrk_material import replicas_of
from strongroom.services.paging import decode_marker, encode_marker, next_page
from strongroom.services.resolve import resolve_key
from strongroom.services.service_events import ServiceChange, announce, key_details, record
from strongroom.storage.ports import Transaction

log = logging.getLogger(__name__)

DEFAULT_PERIOD_DAYS = 365
# ConflictException: "an automatic rotation of this key is currently in progress or
# scheduled to begin within the next 20 minutes" (the model's ConflictException doc).
CONFLICT_WINDOW = timedelta(minutes=20)
_GOING_AWAY = frozenset({KeyState.PENDING_DELETION, KeyState.PENDING_REPLICA_DELETION})


def _not_valid(key: Key, what: str) -> UnsupportedOperationException:
    return UnsupportedOperationException(f"{key.arn} {what} which is not valid for this operation.")


def check_rotatable(key: Key, *, automatic: bool, change: bool = True) -> None:
    """UnsupportedOperationException for a key that cannot rotate: any but a symmetric
    encryption key; a key in a custom key store; for automatic rotation, a key with
    imported material (key-state table footnotes [6] and [7]); for a ``change``, a
    multi-Region replica (its primary's rotation applies to the whole set)."""
    if change and key.multi_region_type is MultiRegionKeyType.REPLICA:
        raise UnsupportedOperationException(
            f"{key.arn} is a multi-Region replica key: rotate its primary key in "
            f"{key.primary_region}."
        )
    if key.origin not in (Origin.AWS_KMS, Origin.EXTERNAL) or (
        automatic and key.origin is Origin.EXTERNAL
    ):
        raise _not_valid(key, f"origin is {key.origin}")
    if key.key_spec.family is not SpecFamily.SYMMETRIC:
        raise _not_valid(key, f"key spec is {key.key_spec}")


def with_rotation_period(key: Key, days: int, now: datetime) -> Key:
    """``key`` rotating automatically every ``days``: from ``now`` when rotation was off,
    else on the schedule that runs since it was turned on or last rotated automatically."""
    if key.rotation_period_days is None or key.next_rotation_date is None:
        since = now
    else:
        since = key.next_rotation_date - timedelta(days=key.rotation_period_days)
    return key.evolve(rotation_period_days=days, next_rotation_date=since + timedelta(days=days))


def enable_rotation(core: Core, ctx: RequestContext, key_id: str, period_days: int | None) -> Key:
    """EnableKeyRotation: rotate every ``period_days`` (90-2560, default 365; the model
    enforces the range) from now on, or, when rotation is on already, change the period of
    the schedule that runs since it was turned on or last rotated automatically. The request's
    period is the kms:RotationPeriodInDays condition key."""
    days = DEFAULT_PERIOD_DAYS if period_days is None else period_days
    now = core.clock()

    def update(key: Key) -> Key:
        return with_rotation_period(key, days, now)

    extra = None if period_days is None else {"kms:RotationPeriodInDays": str(period_days)}
    return change_key(
        core,
        ctx,
        key_id,
        Operation.ENABLE_KEY_ROTATION,
        update,
        extra=extra,
        check=lambda k: check_rotatable(k, automatic=True),
    )


def disable_rotation(core: Core, ctx: RequestContext, key_id: str) -> Key:
    """DisableKeyRotation: no more automatic rotations (on-demand ones stay possible)."""
    return change_key(
        core,
        ctx,
        key_id,
        Operation.DISABLE_KEY_ROTATION,
        lambda k: k.evolve(rotation_period_days=None, next_rotation_date=None),
        check=lambda k: check_rotatable(k, automatic=True),
    )


@dataclass(frozen=True, slots=True)
class RotationStatus:
    key: Key
    enabled: bool
    period_days: int | None
    next_rotation_date: datetime | None


def rotation_status(core: Core, ctx: RequestContext, key_id: str) -> RotationStatus:
    """GetKeyRotationStatus. While a key is pending deletion its status reads false; if the
    deletion is cancelled, the status it had comes back (GetKeyRotationStatus doc)."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "GetKeyRotationStatus", key)
    check_rotatable(key, automatic=True, change=False)
    check_state(Operation.GET_KEY_ROTATION_STATUS, key)
    if key.state not in _GOING_AWAY:
        key = material_source(core, key)  # a replica shows its primary's schedule
    if key.rotation_period_days is None or key.state in _GOING_AWAY:
        return RotationStatus(key, False, None, None)
    return RotationStatus(key, True, key.rotation_period_days, key.next_rotation_date)


def rotate_on_demand(core: Core, ctx: RequestContext, key_id: str) -> Key:
    """RotateKeyOnDemand: a new current material version now, the automatic schedule left
    as it is. A key with imported material makes current the material imported for it.

    Raises NotFoundException, AccessDeniedException, DisabledException,
    KMSInvalidStateException, UnsupportedOperationException (in that order: a disabled
    RSA key gets DisabledException, recorded against AWS in LocalStack's snapshot
    test_rotate_key_on_demand_raises_error_given_key_is_disabled), then
    KMSInvalidStateException (no material pending rotation), LimitExceededException (the
    per-key quota of on-demand rotations) and ConflictException (an automatic rotation due
    within 20 minutes)."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "RotateKeyOnDemand", key)
    check_state(Operation.ROTATE_KEY_ON_DEMAND, key)
    if key.key_spec.family is not SpecFamily.SYMMETRIC:
        # AWS's answer carries no message here (recorded against AWS: LocalStack snapshot
        # test_rotate_key_on_demand_raises_error_given_non_symmetric_key).
        raise UnsupportedOperationException()
    check_rotatable(key, automatic=False)
    generated = key.origin is Origin.AWS_KMS
    material = core.keystores.for_key(key).new_material(key) if generated else None
    now = core.clock()
    with core.store.transaction() as tx:
        current = tx.keys.get(key.arn, for_update=True)
        if current is None:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        check_state(Operation.ROTATE_KEY_ON_DEMAND, current)
        versions = tx.material.versions(key.arn)
        done = sum(1 for v in versions if v.rotation_type is RotationType.ON_DEMAND)
        if done >= core.on_demand_rotation_limit:
            raise LimitExceededException(
                "The on-demand rotations limit has been reached for the given keyId. No more "
                f"on-demand rotations can be performed for this key: {key.arn}"
            )
        due = current.next_rotation_date
        if due is not None and due - now <= CONFLICT_WINDOW:
            raise ConflictException(
                f"An automatic rotation of {key.arn} is in progress or scheduled to begin "
                "within the next 20 minutes."
            )
        if material is not None:
            updated = add_generated_version(
                core, tx, current, material, now, RotationType.ON_DEMAND
            )
        else:
            updated = _promote_pending(tx, current, versions, now)
        tx.keys.update(updated)
        changed = record_changes(tx, updated, now)
    forget(core, changed)
    log.info("rotated %s on demand to material %s", key.arn, updated.current_material_id)
    return updated


def _promote_pending(
    tx: Transaction, key: Key, versions: list[MaterialVersion], now: datetime
) -> Key:
    """Make the imported material pending rotation current, in a multi-Region primary's
    replicas too; the current one stays for decryption."""
    waiting = KeyMaterialState.PENDING_MULTI_REGION_IMPORT_AND_ROTATION
    if any(v.state is waiting for v in versions):
        raise KMSInvalidStateException(
            f"The key material pending rotation for {key.arn} is not imported into every "
            "related multi-Region replica key yet."
        )
    pending = next((v for v in versions if v.state is KeyMaterialState.PENDING_ROTATION), None)
    if pending is None:
        raise KMSInvalidStateException(
            f"No available key material pending rotation for the key: {key.arn}."
        )
    for replica in replicas_of(tx, key):
        fresh = tx.keys.get(replica.arn, for_update=True)
        own = tx.material.versions(replica.arn)
        mirror = next((v for v in own if v.version == pending.version), None)
        if fresh is not None and mirror is not None:
            tx.keys.update(_make_current(tx, fresh, own, mirror, now))
    return _make_current(tx, key, versions, pending, now)


def _make_current(
    tx: Transaction,
    key: Key,
    versions: list[MaterialVersion],
    pending: MaterialVersion,
    now: datetime,
) -> Key:
    for info in versions:
        if info.state is KeyMaterialState.CURRENT:
            tx.material.update_version(info.evolve(state=KeyMaterialState.NON_CURRENT))
    tx.material.update_version(
        pending.evolve(
            state=KeyMaterialState.CURRENT, rotation_date=now, rotation_type=RotationType.ON_DEMAND
        )
    )
    promoted = key.evolve(current_version=pending.version, current_material_id=pending.material_id)
    return settle(tx, promoted)


def rotate_due_keys(core: Core) -> int:
    """Rotate every enabled key whose automatic rotation date has come; the next date is one
    period later. Run by the scheduler; returns how many keys it rotated."""
    now = core.clock()
    with core.store.transaction() as tx:
        due = tx.keys.due_for_rotation(now)
    rotated = 0
    for key in due:
        material = core.keystores.for_key(key).new_material(key)
        with core.store.transaction() as tx:
            current = tx.keys.get(key.arn, for_update=True)
            # Another process may have rotated it first, or the key changed meanwhile.
            if (
                current is None
                or current.state is not KeyState.ENABLED
                or current.rotation_period_days is None
                or current.next_rotation_date is None
                or current.next_rotation_date > now
                or current.origin is not Origin.AWS_KMS
                or current.multi_region_type is MultiRegionKeyType.REPLICA
            ):
                continue
            rotation = ServiceChange("RotateKey", key.arn, now)
            announce(core, [rotation])
            updated = add_generated_version(
                core, tx, current, material, now, RotationType.AUTOMATIC
            ).evolve(next_rotation_date=now + timedelta(days=current.rotation_period_days))
            tx.keys.update(updated)
            tx.changes.record(key.arn, now)
        core.cache.invalidate(key.arn)
        rotation.details = key_details(
            key.arn,
            rotationType=RotationType.AUTOMATIC.value,
            keyOrigin=current.origin.value,
            previousKeyMaterialId=current.current_material_id,
            currentKeyMaterialId=updated.current_material_id,
        )
        record(core, [rotation])
        rotated += 1
        log.info("rotated %s automatically to material %s", key.arn, updated.current_material_id)
    return rotated


def list_rotations(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    include: IncludeKeyMaterial | None,
    limit: int,
    marker: str | None,
) -> tuple[Key, list[MaterialVersion], str | None]:
    """ListKeyRotations: the key's material versions in the order they came, a page of at
    most ``limit`` and the marker of the next. By default (ROTATIONS_ONLY) those that
    rotations made current; ALL_KEY_MATERIAL adds the first material and imported material
    pending rotation."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "ListKeyRotations", key)
    check_rotatable(key, automatic=False)
    check_state(Operation.LIST_KEY_ROTATIONS, key)
    after = 0 if marker is None else decode_marker(marker, _ROTATION_MARKER, _version)
    with core.store.read() as tx:
        versions = tx.material.versions(key.arn)
    if include is not IncludeKeyMaterial.ALL_KEY_MATERIAL:
        versions = [v for v in versions if v.rotation_date is not None]
    versions = [v for v in versions if v.version > after]
    page, next_marker = next_page(
        versions, limit, lambda v: encode_marker(_ROTATION_MARKER, str(v.version))
    )
    return key, page, next_marker


def _version(fields: str) -> int:
    if not fields.isdigit():
        raise ValueError(fields)
    return int(fields)


_ROTATION_MARKER = "rotation"
