"""Grants in SQL: the ``grants`` table, with a grant's constraint as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.models import Grant
from strongroom.storage.schema import grant_counts, grants, keys
from strongroom.storage.sql._rows import after_position, count_down, count_up, counted_row

_EQUALS, _SUBSET = "EncryptionContextEquals", "EncryptionContextSubset"


def _grant(row: sa.Row[Any]) -> Grant:
    context = None if row.constraint_context is None else json.loads(row.constraint_context)
    return Grant(
        grant_id=row.grant_id,
        key_arn=row.key_arn,
        grantee_principal=row.grantee_principal,
        operations=tuple(json.loads(row.operations)),
        issuing_account=row.issuing_account,
        creation_date=datetime.fromtimestamp(row.creation_date, UTC),
        retiring_principal=row.retiring_principal,
        encryption_context_equals=context if row.constraint_type == _EQUALS else None,
        encryption_context_subset=context if row.constraint_type == _SUBSET else None,
        name=row.name,
    )


def _grant_values(grant: Grant) -> dict[str, Any]:
    kind, context = None, None
    if grant.encryption_context_equals is not None:
        kind, context = _EQUALS, grant.encryption_context_equals
    elif grant.encryption_context_subset is not None:
        kind, context = _SUBSET, grant.encryption_context_subset
    return {
        "grant_id": grant.grant_id,
        "key_arn": grant.key_arn,
        "grantee_principal": grant.grantee_principal,
        "retiring_principal": grant.retiring_principal,
        "operations": json.dumps(list(grant.operations)),
        "constraint_type": kind,
        "constraint_context": None if context is None else json.dumps(dict(context)),
        "name": grant.name,
        "issuing_account": grant.issuing_account,
        "creation_date": grant.creation_date.timestamp(),
    }


def _in_order(q: sa.Select[Any], after: tuple[datetime, str] | None) -> sa.Select[Any]:
    return after_position(q, grants.c.creation_date, grants.c.grant_id, after)


_KEY = ""  # grant_counts.grantee_principal of a key's own count


_COUNT_DOWN = count_down(grant_counts, "grants")
_COUNT = sa.select(grant_counts.c.grants).where(*counted_row(grant_counts))


class SqlGrants:
    """The GrantRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def insert(self, grant: Grant) -> None:
        """Insert a grant, and count it for its key and its grantee (``grant_counts``)."""
        self._c.execute(grants.insert().values(**_grant_values(grant)))
        up = count_up(self._c.dialect.name, grant_counts, "grants")
        for grantee in (_KEY, grant.grantee_principal):
            self._c.execute(up, {"in_key_arn": grant.key_arn, "in_grantee_principal": grantee})

    def get(self, grant_id: str) -> Grant | None:
        row = self._c.execute(sa.select(grants).where(grants.c.grant_id == grant_id)).first()
        return None if row is None else _grant(row)

    def delete(self, grant_id: str) -> bool:
        """Delete one grant; False when there was none of that id."""
        gone = self._c.execute(
            grants.delete()
            .where(grants.c.grant_id == grant_id)
            .returning(grants.c.key_arn, grants.c.grantee_principal)
        ).first()
        if gone is None:
            return False
        for grantee in (_KEY, gone.grantee_principal):
            row = {"in_key_arn": gone.key_arn, "in_grantee_principal": grantee}
            self._c.execute(_COUNT_DOWN, row)
        return True

    def list_retirable(
        self,
        retiring_principal: str,
        region: str,
        *,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Grant]:
        """Grants on keys of ``region`` (any account) naming ``retiring_principal``, in
        (creation date, grant id) order after ``after``."""
        q = (
            sa.select(grants)
            .join(keys, keys.c.arn == grants.c.key_arn)
            .where(grants.c.retiring_principal == retiring_principal, keys.c.region == region)
        )
        return [_grant(r) for r in self._c.execute(_in_order(q, after).limit(limit))]

    def count(self, key_arn: str, grantee_principal: str | None = None) -> int:
        """How many grants a key has (for one grantee when given): a row of
        ``grant_counts``, whatever the number of grants."""
        grantee = _KEY if grantee_principal is None else grantee_principal
        found = self._c.execute(_COUNT, {"in_key_arn": key_arn, "in_grantee_principal": grantee})
        return int(found.scalar() or 0)

    def list(
        self,
        key_arn: str,
        *,
        grant_id: str | None = None,
        grantee_principal: str | None = None,
        name: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int | None = None,
    ) -> list[Grant]:
        """A key's grants in (creation date, grant id) order after ``after``, those of one
        grant id, grantee or name when given."""
        q = sa.select(grants).where(grants.c.key_arn == key_arn)
        if grant_id is not None:
            q = q.where(grants.c.grant_id == grant_id)
        if grantee_principal is not None:
            q = q.where(grants.c.grantee_principal == grantee_principal)
        if name is not None:
            q = q.where(grants.c.name == name)
        q = _in_order(q, after)
        if limit is not None:
            q = q.limit(limit)
        return [_grant(r) for r in self._c.execute(q)]
