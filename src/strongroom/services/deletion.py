"""Scheduled key deletion: the waiting period, its cancellation, and the job that deletes."""

from __future__ import annotations

import logging
from datetime import timedelta

from strongroom.domain.enums import KeyState
from strongroom.domain.models import Key
from strongroom.services.core import Core, RequestContext
from strongroom.services.keys import change_key
from strongroom.services.validation import check_range

log = logging.getLogger(__name__)

MIN_WINDOW_DAYS, MAX_WINDOW_DAYS, DEFAULT_WINDOW_DAYS = 7, 30, 30


def schedule_deletion(
    core: Core, ctx: RequestContext, key_id: str, pending_window_days: int | None
) -> Key:
    """ScheduleKeyDeletion: the key turns PendingDeletion and is deleted after 7-30 days.
    kms:ScheduleKeyDeletionPendingWindowInDays (numeric) is the waiting period, the default
    of 30 days when the request names none."""
    days = DEFAULT_WINDOW_DAYS if pending_window_days is None else pending_window_days
    check_range("pendingWindowInDays", days, MIN_WINDOW_DAYS, MAX_WINDOW_DAYS)
    when = core.clock() + timedelta(days=days)
    return change_key(
        core,
        ctx,
        key_id,
        "ScheduleKeyDeletion",
        lambda k: k.evolve(
            state=KeyState.PENDING_DELETION, deletion_date=when, pending_window_days=days
        ),
        extra={"kms:ScheduleKeyDeletionPendingWindowInDays": str(days)},
    )


def cancel_deletion(core: Core, ctx: RequestContext, key_id: str) -> Key:
    """CancelKeyDeletion: the key returns Disabled (AWS CancelKeyDeletion documentation)."""
    return change_key(
        core,
        ctx,
        key_id,
        "CancelKeyDeletion",
        lambda k: k.evolve(state=KeyState.DISABLED, deletion_date=None, pending_window_days=None),
    )


def delete_due_keys(core: Core) -> int:
    """Delete every key whose waiting period has passed, material, tags and aliases included.
    Run by the scheduler; returns how many keys it deleted."""
    now = core.clock()
    changed: list[str] = []
    with core.store.transaction() as tx:
        due = tx.keys_due_for_deletion(now)
        for key in due:
            changed += [key.arn, *tx.delete_key(key)]
        for arn in changed:
            tx.record_change(arn, now)
    for arn in changed:
        core.cache.invalidate(arn)
    for key in due:
        log.info("deleted key %s (deletion date %s)", key.arn, key.deletion_date)
    return len(due)
