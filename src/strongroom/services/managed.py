"""AWS managed keys: made the first time a request names ``alias/aws/<service>``, and the
predefined aliases ListAliases shows before that.

Which services, and each key's description and policy: ``domain.managed`` and
``authz.managed_policy``. A predefined alias names no key until it is first used; then
the key is created in the caller's account and Region, with its alias, in one transaction.
The alias row is unique per (account, Region, name), so when two processes or nodes name
it first at the same moment, one insert fails, its transaction rolls back, and that request
takes the key the other one made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from strongroom.authz.managed_policy import aws_managed_key_policy
from strongroom.domain.enums import KeyManager, KeySpec, KeyUsage
from strongroom.domain.errors import StorageError
from strongroom.domain.ids import alias_arn, new_key_id
from strongroom.domain.managed import (
    MANAGED_SERVICES,
    ROTATION_PERIOD_DAYS,
    ManagedService,
    managed_service,
)
from strongroom.domain.models import Alias, Key
from strongroom.services.core import Core
from strongroom.services.key_records import insert_key, new_key_record


@dataclass(frozen=True, slots=True)
class PredefinedAlias:
    """An ``alias/aws/<service>`` alias whose key AWS has not created yet: ListAliases shows
    it without TargetKeyId (``ListAliases`` doc)."""

    name: str
    arn: str


def managed_key_id(core: Core, account: str, region: str, name: str) -> str | None:
    """The key id of the AWS managed key that the alias ``name`` names in ``account`` and
    ``region``, created now if this is the alias's first use; None when ``name`` is not a
    predefined AWS alias. Call it only once the alias was not found."""
    service = managed_service(name)
    if service is None:
        return None
    now = core.clock()
    key = _new_key(service, account, region, now)
    alias = Alias(alias_arn(region, account, name), name, account, region, key.key_id, now, now)
    material = core.keystores.for_key(key).new_material(key)
    try:
        with core.store.transaction() as tx:
            made = tx.aliases.get(account, region, name)
            if made is not None:
                return made.target_key_id
            tx.aliases.insert(alias)  # the unique row: a concurrent first use fails here
            key = insert_key(core, tx, key, material, ())
    except StorageError:
        with core.store.transaction() as tx:
            made = tx.aliases.get(account, region, name)
        if made is None:
            raise
        return made.target_key_id
    return key.key_id


def _new_key(service: ManagedService, account: str, region: str, now: datetime) -> Key:
    key = new_key_record(
        account,
        region,
        new_key_id(),
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        description=service.description,
        policy=aws_managed_key_policy(service, account, region),
        created=now,
        key_manager=KeyManager.AWS,
    )
    # Rotated every year, which cannot be changed (its policy refuses rotation changes),
    # like every AWS managed key.
    return key.evolve(
        rotation_period_days=ROTATION_PERIOD_DAYS,
        next_rotation_date=now + timedelta(days=ROTATION_PERIOD_DAYS),
    )


def with_predefined(
    page: list[Alias], account: str, region: str, *, after: str | None, limit: int
) -> list[Alias | PredefinedAlias]:
    """``page`` (the first ``limit`` stored aliases after ``after``, in name order) merged
    with the predefined aliases that have no key yet, cut to ``limit``.

    A predefined alias that sorts within the result but is stored would be in ``page``
    already (it sorts before the page's last entry), so ``page``'s names suffice to drop the
    predefined aliases that already name a key."""
    stored = {a.name for a in page}
    merged: list[Alias | PredefinedAlias] = [*page]
    merged += [
        PredefinedAlias(name, alias_arn(region, account, name))
        for name in MANAGED_SERVICES
        if name not in stored and (after is None or name > after)
    ]
    merged.sort(key=lambda a: a.name)
    return merged[:limit]
