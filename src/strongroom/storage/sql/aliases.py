"""Aliases in SQL: the ``aliases`` table, by (account, region, name)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.models import Alias
from strongroom.storage.schema import aliases


def _alias(row: sa.Row[Any]) -> Alias:
    return Alias(
        arn=f"arn:aws:kms:{row.region}:{row.account_id}:{row.name}",
        name=row.name,
        account=row.account_id,
        region=row.region,
        target_key_id=row.target_key_id,
        creation_date=datetime.fromtimestamp(row.creation_date, UTC),
        last_updated_date=datetime.fromtimestamp(row.last_updated_date, UTC),
    )


def _named(alias: Alias) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        aliases.c.account_id == alias.account,
        aliases.c.region == alias.region,
        aliases.c.name == alias.name,
    )


class SqlAliases:
    """The AliasRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def get(self, account: str, region: str, name: str) -> Alias | None:
        q = sa.select(aliases).where(
            aliases.c.account_id == account, aliases.c.region == region, aliases.c.name == name
        )
        row = self._c.execute(q).first()
        return None if row is None else _alias(row)

    def in_every_region(self, account: str, name: str) -> list[Alias]:
        q = (
            sa.select(aliases)
            .where(aliases.c.account_id == account, aliases.c.name == name)
            .order_by(aliases.c.region)
        )
        return [_alias(r) for r in self._c.execute(q)]

    def insert(self, alias: Alias) -> None:
        self._c.execute(
            aliases.insert().values(
                account_id=alias.account,
                region=alias.region,
                name=alias.name,
                target_key_id=alias.target_key_id,
                creation_date=alias.creation_date.timestamp(),
                last_updated_date=alias.last_updated_date.timestamp(),
            )
        )

    def update(self, alias: Alias) -> None:
        self._c.execute(
            aliases.update()
            .where(*_named(alias))
            .values(
                target_key_id=alias.target_key_id,
                last_updated_date=alias.last_updated_date.timestamp(),
            )
        )

    def delete(self, alias: Alias) -> None:
        self._c.execute(aliases.delete().where(*_named(alias)))

    def count(self, account: str, region: str, key_id: str) -> int:
        """How many aliases name a key."""
        q = sa.select(sa.func.count()).where(
            aliases.c.account_id == account,
            aliases.c.region == region,
            aliases.c.target_key_id == key_id,
        )
        return int(self._c.execute(q).scalar_one())

    def list(
        self, account: str, region: str, *, key_id: str | None, after: str | None, limit: int
    ) -> list[Alias]:
        """Aliases of an account and region (of one key id when given) in name order,
        after the name ``after``."""
        q = sa.select(aliases).where(aliases.c.account_id == account, aliases.c.region == region)
        if key_id is not None:
            q = q.where(aliases.c.target_key_id == key_id)
        if after is not None:
            q = q.where(aliases.c.name > after)
        q = q.order_by(aliases.c.name).limit(limit)
        return [_alias(r) for r in self._c.execute(q)]
