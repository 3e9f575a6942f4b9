"""Quotas in SQL: the operator's values (``quota_values``) and the shared token buckets of
request quotas (``quota_buckets``)."""

from __future__ import annotations

import math

import sqlalchemy as sa

from strongroom.storage.schema import key_counts, quota_buckets, quota_values
from strongroom.storage.sql._rows import upsert_insert

_CUSTOMER_KEYS = sa.select(key_counts.c.customer_keys).where(
    key_counts.c.account_id == sa.bindparam("account"),
    key_counts.c.region == sa.bindparam("region"),
)


class SqlQuotas:
    """The QuotaRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def values(self) -> list[tuple[str, str, float]]:
        rows = self._c.execute(
            sa.select(quota_values.c.account_id, quota_values.c.quota_name, quota_values.c.value)
        ).all()
        return [(r.account_id, r.quota_name, float(r.value)) for r in rows]

    def value_for(self, account: str, name: str) -> float | None:
        """The account's own value of quota ``name``, else the one for every account ("*")."""
        rows = self._c.execute(
            sa.select(quota_values.c.account_id, quota_values.c.value).where(
                quota_values.c.quota_name == name, quota_values.c.account_id.in_((account, "*"))
            )
        ).all()
        found = {r.account_id: float(r.value) for r in rows}
        return found.get(account, found.get("*"))

    def put_value(self, account: str, name: str, value: float, now: float) -> None:
        where = (quota_values.c.account_id == account) & (quota_values.c.quota_name == name)
        done = self._c.execute(
            quota_values.update().where(where).values(value=value, updated=now)
        ).rowcount
        if not done:
            self._c.execute(
                quota_values.insert().values(
                    account_id=account, quota_name=name, value=value, updated=now
                )
            )

    def delete_value(self, account: str, name: str) -> bool:
        where = (quota_values.c.account_id == account) & (quota_values.c.quota_name == name)
        return bool(self._c.execute(quota_values.delete().where(where)).rowcount)

    def customer_managed_keys(self, account: str, region: str) -> int:
        """The account's count in ``key_counts`` (kept by ``SqlKeys``), not a count of keys."""
        found = self._c.execute(_CUSTOMER_KEYS, {"account": account, "region": region})
        return int(found.scalar() or 0)

    def take(
        self,
        account: str,
        region: str,
        bucket: str,
        *,
        rate: float,
        capacity: float,
        want: int,
        now: float,
    ) -> int:
        """Take up to ``want`` whole tokens from a shared bucket that refills at ``rate`` per
        second up to ``capacity`` (a new bucket starts full); the row is locked for the
        rest of the transaction, so processes take their leases one at a time."""
        key = {"account_id": account, "region": region, "bucket": bucket}
        self._c.execute(
            upsert_insert(self._c, quota_buckets)
            .values(**key, tokens=capacity, updated=now)
            .on_conflict_do_nothing()
        )
        where = sa.and_(*(quota_buckets.c[k] == v for k, v in key.items()))
        row = self._c.execute(
            sa.select(quota_buckets.c.tokens, quota_buckets.c.updated)
            .where(where)
            .with_for_update()
        ).one()
        tokens = min(capacity, row.tokens + max(0.0, now - row.updated) * rate)
        got = int(max(0, min(want, math.floor(tokens))))
        self._c.execute(
            quota_buckets.update().where(where).values(tokens=tokens - got, updated=now)
        )
        return got
