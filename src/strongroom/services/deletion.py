"""Scheduled key deletion: the waiting period, its cancellation, and the job that deletes.

A multi-Region primary key that still has replicas is not deleted: ScheduleKeyDeletion
makes it PendingReplicaDeletion, and its waiting period starts when the job deletes the
last replica (AWS KMS Developer Guide, "Deleting multi-Region keys").
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from strongroom.domain.enums import KeyState, MultiRegionKeyType
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.services.core import Core, RequestContext
from strongroom.services.keys import change_key, change_key_in
from strongroom.services.mrk_material import sync_set
from strongroom.services.service_events import ServiceChange, announce, record
from strongroom.services.validation import check_range
from strongroom.storage.ports import Transaction

log = logging.getLogger(__name__)

MIN_WINDOW_DAYS, MAX_WINDOW_DAYS, DEFAULT_WINDOW_DAYS = 7, 30, 30


def schedule_deletion(
    core: Core, ctx: RequestContext, key_id: str, pending_window_days: int | None
) -> Key:
    """ScheduleKeyDeletion: the key turns PendingDeletion and is deleted after 7-30 days; a
    multi-Region primary key with replicas turns PendingReplicaDeletion, with no date yet.
    kms:ScheduleKeyDeletionPendingWindowInDays (numeric) is the waiting period, the default
    of 30 days when the request names none."""
    days = DEFAULT_WINDOW_DAYS if pending_window_days is None else pending_window_days
    check_range("pendingWindowInDays", days, MIN_WINDOW_DAYS, MAX_WINDOW_DAYS)
    when = core.clock() + timedelta(days=days)

    def schedule(tx: Transaction, key: Key) -> Key:
        if key.multi_region_type is MultiRegionKeyType.PRIMARY and _has_replicas(tx, key):
            return key.evolve(
                state=KeyState.PENDING_REPLICA_DELETION,
                deletion_date=None,
                pending_window_days=days,
            )
        return key.evolve(
            state=KeyState.PENDING_DELETION, deletion_date=when, pending_window_days=days
        )

    return change_key_in(
        core,
        ctx,
        key_id,
        Operation.SCHEDULE_KEY_DELETION,
        schedule,
        extra={"kms:ScheduleKeyDeletionPendingWindowInDays": str(days)},
    )


def _has_replicas(tx: Transaction, primary: Key) -> bool:
    return len(tx.keys.related(primary.account, primary.key_id)) > 1


def cancel_deletion(core: Core, ctx: RequestContext, key_id: str) -> Key:
    """CancelKeyDeletion: the key returns Disabled (AWS CancelKeyDeletion documentation)."""
    return change_key(
        core,
        ctx,
        key_id,
        Operation.CANCEL_KEY_DELETION,
        lambda k: k.evolve(state=KeyState.DISABLED, deletion_date=None, pending_window_days=None),
    )


def delete_due_keys(core: Core) -> int:
    """Delete every key whose waiting period has passed, material, tags and aliases included,
    each recorded in the audit trail as AWS records it (DeleteKey, an AwsServiceEvent, its
    intent durable before the deletion commits). Run by the scheduler; returns how many
    keys it deleted."""
    now = core.clock()
    changed: list[str] = []
    with core.store.transaction() as tx:
        due = tx.keys.due_for_deletion(now)
        # "responseElements.keyId": the key's ARN (ct-delete-key, since December 2022).
        deletions = [
            ServiceChange("DeleteKey", key.arn, now, response={"keyId": key.arn}) for key in due
        ]
        announce(core, deletions)
        for key in due:
            core.keystores.for_key(key).destroy(tx, key)
            changed += [key.arn, *tx.keys.delete(key)]
        changed += _after_deleting_related(tx, due, now)
        for arn in changed:
            tx.changes.record(arn, now)
    for arn in changed:
        core.cache.invalidate(arn)
    record(core, deletions)
    for key in due:
        log.info("deleted key %s (deletion date %s)", key.arn, key.deletion_date)
        # What lives outside the database (a custom key store's token object) goes only now
        # that the key's deletion has committed.
        core.keystores.for_key(key).discard(key)
    return len(due)


def _after_deleting_related(tx: Transaction, deleted: list[Key], now: datetime) -> list[str]:
    """For each multi-Region set the job deleted keys of: a primary in PendingReplicaDeletion
    whose last replica is gone turns PendingDeletion, its waiting period starting now, and
    imported material the primary awaited in a deleted replica no longer waits for it.
    Returns the ARNs of the set's remaining keys, whose cached sets changed."""
    changed: list[str] = []
    for account, key_id in sorted({(k.account, k.key_id) for k in deleted if k.multi_region}):
        related = tx.keys.related(account, key_id, for_update=True)
        changed += [k.arn for k in related]
        if related:
            sync_set(tx, related[0])
        if len(related) == 1 and related[0].state is KeyState.PENDING_REPLICA_DELETION:
            primary = related[0]
            days = primary.pending_window_days or DEFAULT_WINDOW_DAYS
            tx.keys.update(
                primary.evolve(
                    state=KeyState.PENDING_DELETION, deletion_date=now + timedelta(days=days)
                )
            )
            log.info("%s has no replicas left: deletion in %d days", primary.arn, days)
    return changed
