"""Key records in SQL: the ``keys`` table, and deleting a key with what hangs off it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.enums import (
    ExpirationModel,
    KeyManager,
    KeySpec,
    KeyState,
    KeyUsage,
    Origin,
)
from strongroom.domain.ids import lock_order
from strongroom.domain.models import Key
from strongroom.storage.schema import (
    aliases,
    grant_counts,
    grants,
    import_tokens,
    key_counts,
    key_last_usage,
    key_material_versions,
    key_materials,
    key_state_counts,
    keys,
    tags,
)
from strongroom.storage.sql._rows import (
    after_position,
    count_down,
    count_up,
    dt,
    enum,
    ts,
    value,
)


def _key(row: sa.Row[Any]) -> Key:
    return Key(
        arn=row.arn,
        account=row.account_id,
        region=row.region,
        state=KeyState(row.state),
        description=row.description,
        key_usage=KeyUsage(row.key_usage),
        key_spec=KeySpec(row.key_spec),
        origin=Origin(row.origin),
        key_manager=KeyManager(row.key_manager),
        multi_region=bool(row.multi_region),
        policy=row.policy,
        creation_date=datetime.fromtimestamp(row.creation_date, UTC),
        current_version=row.current_version,
        deletion_date=dt(row.deletion_date),
        pending_window_days=row.pending_window_days,
        primary_region=row.primary_region,
        rotation_period_days=row.rotation_period_days,
        next_rotation_date=dt(row.next_rotation_date),
        current_material_id=row.current_material_id,
        expiration_model=enum(ExpirationModel, row.expiration_model),
        valid_to=dt(row.valid_to),
        custom_key_store_id=row.custom_key_store_id,
        xks_key_id=row.xks_key_id,
    )


def _key_values(key: Key) -> dict[str, Any]:
    return {
        "arn": key.arn,
        "key_id": key.key_id,
        "account_id": key.account,
        "region": key.region,
        "state": key.state.value,
        "description": key.description,
        "key_usage": key.key_usage.value,
        "key_spec": key.key_spec.value,
        "origin": key.origin.value,
        "key_manager": key.key_manager.value,
        "multi_region": key.multi_region,
        "policy": key.policy,
        "creation_date": key.creation_date.timestamp(),
        "current_version": key.current_version,
        "deletion_date": ts(key.deletion_date),
        "pending_window_days": key.pending_window_days,
        "primary_region": key.primary_region,
        "rotation_period_days": key.rotation_period_days,
        "next_rotation_date": ts(key.next_rotation_date),
        "current_material_id": key.current_material_id,
        "expiration_model": value(key.expiration_model),
        "valid_to": ts(key.valid_to),
        "custom_key_store_id": key.custom_key_store_id,
        "xks_key_id": key.xks_key_id,
    }


_INSERT = keys.insert()
_UPDATE = keys.update().where(keys.c.arn == sa.bindparam("at_arn"))
# The usual update, which leaves the key's state as it is: it matches no row when the state
# changes, which then takes _changing_state.
_UPDATE_IN_STATE = keys.update().where(
    keys.c.arn == sa.bindparam("at_arn"), keys.c.state == sa.bindparam("at_state")
)
_STATE_OF = sa.select(keys.c.state).where(keys.c.arn == sa.bindparam("at_arn")).with_for_update()
# A key's set: its row and those of its multi-Region primary and replicas (one account, one
# key id), locked in Region order. PostgreSQL locks the rows in the order they are returned.
_SET_ORDER = (keys.c.account_id, keys.c.key_id, keys.c.region)
_LOCK_SET = (
    sa.select(keys)
    .where(
        keys.c.account_id == sa.bindparam("in_account_id"),
        keys.c.key_id == sa.bindparam("in_key_id"),
    )
    .order_by(*_SET_ORDER)
    .with_for_update()
)


_COUNT_DOWN = count_down(key_counts, "customer_keys")
_STATE_DOWN = count_down(key_state_counts, "key_count")


class SqlKeys:
    """The KeyRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def get(self, arn: str, *, for_update: bool = False) -> Key | None:
        """The key of ``arn``; ``for_update``: locked until the transaction ends, with the
        rest of its multi-Region set. Transactions lock key rows set by set, each set's in
        Region order and the sets in the order of their account and key id
        (``domain.ids.lock_order``), and only then the account's counters, so that two never
        each hold a row the other waits for: a change to a primary locks its replicas first
        when they come before it, as the scheduled deletion of a replica does the primary."""
        if for_update:
            account, key_id, _ = lock_order(arn)
            rows = self._c.execute(_LOCK_SET, {"in_account_id": account, "in_key_id": key_id})
            return next((_key(row) for row in rows if row.arn == arn), None)
        row = self._c.execute(sa.select(keys).where(keys.c.arn == arn)).first()
        return None if row is None else _key(row)

    # The values go as parameters of one statement, not into a new statement each time:
    # SQLAlchemy compiles the statement once and does not walk 24 values for a cache key.
    def insert(self, key: Key) -> None:
        """Insert a key; a customer managed key counts in ``key_counts`` (one statement
        on a row of the account's Region, whatever the number of keys)."""
        self._c.execute(_INSERT, _key_values(key))
        where = {"in_account_id": key.account, "in_region": key.region}
        if key.key_manager is KeyManager.CUSTOMER:
            self._c.execute(count_up(self._c.dialect.name, key_counts, "customer_keys"), where)
        self._c.execute(
            count_up(self._c.dialect.name, key_state_counts, "key_count"),
            {**where, "in_state": key.state.value},
        )

    def update(self, key: Key) -> None:
        """Write a key's record; a change of state moves it between the counts of
        ``key_state_counts``."""
        values = {"at_arn": key.arn, **_key_values(key)}
        if not self._c.execute(_UPDATE_IN_STATE, {"at_state": key.state.value, **values}).rowcount:
            self._changing_state(key, values)

    def _changing_state(self, key: Key, values: dict[str, Any]) -> None:
        was = self._c.execute(_STATE_OF, {"at_arn": key.arn}).scalar_one_or_none()
        if was is None:  # no such key: nothing to update, as before
            return
        self._c.execute(_UPDATE, values)
        where = {"in_account_id": key.account, "in_region": key.region}
        down = (_STATE_DOWN, {**where, "in_state": was})
        up = (
            count_up(self._c.dialect.name, key_state_counts, "key_count"),
            {**where, "in_state": key.state.value},
        )
        # The two rows in the order of their states' names, whichever way the key moves:
        # an EnableKey and a DisableKey at once would each hold the row the other waits for.
        for statement, params in sorted((down, up), key=lambda s: str(s[1]["in_state"])):
            self._c.execute(statement, params)

    def delete(self, key: Key) -> list[str]:
        """Delete a key with its material (and what is known of it), import tokens, tags,
        grants, aliases and last usage; returns the deleted aliases' ARNs."""
        own_aliases = (
            aliases.c.account_id == key.account,
            aliases.c.region == key.region,
            aliases.c.target_key_id == key.key_id,
        )
        names = self._c.execute(sa.select(aliases.c.name).where(*own_aliases)).scalars().all()
        self._c.execute(key_materials.delete().where(key_materials.c.key_arn == key.arn))
        self._c.execute(
            key_material_versions.delete().where(key_material_versions.c.key_arn == key.arn)
        )
        self._c.execute(import_tokens.delete().where(import_tokens.c.key_arn == key.arn))
        self._c.execute(tags.delete().where(tags.c.key_arn == key.arn))
        self._c.execute(grants.delete().where(grants.c.key_arn == key.arn))
        self._c.execute(grant_counts.delete().where(grant_counts.c.key_arn == key.arn))
        self._c.execute(aliases.delete().where(*own_aliases))
        self._c.execute(key_last_usage.delete().where(key_last_usage.c.key_arn == key.arn))
        was = self._c.execute(
            keys.delete().where(keys.c.arn == key.arn).returning(keys.c.state)
        ).scalar_one_or_none()
        if was is not None:  # counted down once, in the state the key was in
            where = {"in_account_id": key.account, "in_region": key.region}
            if key.key_manager is KeyManager.CUSTOMER:
                self._c.execute(_COUNT_DOWN, where)
            self._c.execute(_STATE_DOWN, {**where, "in_state": was})
        return [f"arn:aws:kms:{key.region}:{key.account}:{name}" for name in names]

    def related(self, account: str, key_id: str, *, for_update: bool = False) -> list[Key]:
        """Every key of an account with this key id, in every Region, by Region: a
        multi-Region key's primary and replicas."""
        q = (
            sa.select(keys)
            .where(keys.c.account_id == account, keys.c.key_id == key_id)
            .order_by(keys.c.region)
        )
        if for_update:
            q = q.with_for_update()
        return [_key(r) for r in self._c.execute(q)]

    def due_for_deletion(self, now: datetime) -> list[Key]:
        """The keys whose waiting period has passed, locked until the transaction ends with
        the rest of their multi-Region sets, in the order of ``get``: a CancelKeyDeletion
        that holds one commits first, and the key, no longer PendingDeletion, is not
        returned (read as it is once its lock is had; SQLite's writers take turns)."""
        due = sa.select(keys.c.account_id, keys.c.key_id).where(
            keys.c.state == KeyState.PENDING_DELETION.value,
            keys.c.deletion_date <= now.timestamp(),
        )
        q = (
            sa.select(keys)
            .where(sa.tuple_(keys.c.account_id, keys.c.key_id).in_(due))
            .order_by(*_SET_ORDER)
            .with_for_update()
        )
        found = [_key(r) for r in self._c.execute(q)]
        return [
            key
            for key in found
            if key.state is KeyState.PENDING_DELETION
            and key.deletion_date is not None
            and key.deletion_date <= now
        ]

    def due_for_rotation(self, now: datetime) -> list[Key]:
        q = sa.select(keys).where(
            keys.c.state == KeyState.ENABLED.value,
            keys.c.next_rotation_date <= now.timestamp(),
        )
        return [_key(r) for r in self._c.execute(q)]

    def list(
        self, account: str, region: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Key]:
        """Keys of an account and region in (creation date, ARN) order, after ``after``."""
        q = sa.select(keys).where(keys.c.account_id == account, keys.c.region == region)
        q = after_position(q, keys.c.creation_date, keys.c.arn, after).limit(limit)
        return [_key(r) for r in self._c.execute(q)]
