"""Each key's last successful cryptographic use: noting it (per process, in memory), writing
it out (the flush job) and reading it back (the newest of this process's and the database's).

AWS documents "a delay of up to one hour between the time a cryptographic operation occurs
and the time that usage is recorded" (developer guide, "Determine past usage of a KMS key",
understanding-tracking-period). Here a process notes each use in memory as the request
succeeds and writes what it noted every ``usage_flush_seconds`` (60 s by default) and when
it stops: GetKeyLastUsage on another process or node sees a use within that interval, on
the same process at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from strongroom.authz.conditions import ContextValue
from strongroom.domain.models import Key, KeyUse
from strongroom.domain.operations import TRACKED_USES, Operation
from strongroom.services.core import Core, RequestContext

TRAILING_DAYS_KEY = "kms:TrailingDaysWithoutKeyUsage"
TRAILING_DAYS_ACTIONS = frozenset({Operation.DISABLE_KEY, Operation.SCHEDULE_KEY_DELETION})
"""The actions whose request context holds kms:TrailingDaysWithoutKeyUsage (the condition
keys of DisableKey and ScheduleKeyDeletion in "AWS KMS permissions",
kms-api-permissions-reference.html, "Key last usage condition")."""

_DAY = timedelta(days=1)


def note_use(core: Core, ctx: RequestContext, operation: str, when: datetime) -> None:
    """Note a successful request, made at ``when`` (its audit event's time), as the last use
    of the keys it touched, when ``operation`` is one that KeyLastUsage tracks (ReEncrypt:
    both keys). Call it on the event loop, once the request has succeeded: a dict write per
    key, no lock, no database."""
    if operation not in TRACKED_USES:
        return
    use = KeyUse(operation, when, ctx.event_id, ctx.request_id)
    for arn in ctx.resources:
        if ":key/" in arn:
            core.key_usage.note(arn, use)


def note_service_uses(core: Core, ctx: RequestContext) -> None:
    """Note the key uses of the KMS calls that ``ctx``'s request made on the caller's behalf
    (Parameter Store's Encrypt and Decrypt): each is a use, whatever became of the request
    that made it. Call it once their audit events are durable."""
    for call, operation, when in ctx.service_uses:
        note_use(core, call, operation, when)


def write_uses(core: Core, uses: Mapping[str, KeyUse]) -> None:
    """Write ``uses`` (from ``UsageTracker.take``) to the database, the newest use of each
    key winning over what other processes and nodes wrote."""
    with core.store.transaction() as tx:
        tx.key_usage.record(uses)


@dataclass(frozen=True, slots=True)
class LastUse:
    """A key's last use (None: none since tracking began) and when tracking began for it."""

    use: KeyUse | None
    tracking_start: datetime


def last_use(core: Core, key: Key) -> LastUse:
    """The newest use of ``key``, this process's unwritten one or the database's, and the
    later of the key's creation and the start of tracking."""
    with core.store.read() as tx:
        stored = tx.key_usage.get(key.arn)
        started = tx.key_usage.tracking_start()
    mine = core.key_usage.newest(key.arn)
    use = stored if mine is None or (stored and stored.timestamp > mine.timestamp) else mine
    return LastUse(use, max(started, key.creation_date))


def trailing_days(core: Core, key: Key) -> Mapping[str, ContextValue]:
    """kms:TrailingDaysWithoutKeyUsage: the whole days (rounded down) since ``key``'s last
    use, or since tracking began for it when it has none ("Condition keys for AWS KMS",
    conditions-kms-trailing-days-without-key-usage)."""
    found = last_use(core, key)
    since = found.tracking_start if found.use is None else found.use.timestamp
    days = max(0, (core.clock() - since) // _DAY)
    return {TRAILING_DAYS_KEY: str(days)}
