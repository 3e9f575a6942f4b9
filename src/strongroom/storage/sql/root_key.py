"""The root key's binding in SQL: the ``root_key_check`` table, and a wrapped secret to test
a root key on."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from strongroom.storage.ports import RootKeyEntry, WrappedKind, WrappedRow, WrappedSample
from strongroom.storage.schema import (
    access_keys,
    custom_key_stores,
    import_tokens,
    key_materials,
    role_sessions,
    root_key_check,
    root_keys,
)
from strongroom.storage.sql._rows import upsert_insert

_ROW = 1  # the table's only row

# Each wrapped column: its table, the columns of its AAD (the primary key first), how many
# of them are the primary key, and the column.
_WRAPPED: dict[str, tuple[sa.Table, tuple[str, ...], int, str]] = {
    "material": (key_materials, ("key_arn", "version"), 2, "wrapped"),
    "access_key": (access_keys, ("access_key_id",), 1, "wrapped_secret"),
    "session": (role_sessions, ("access_key_id",), 1, "wrapped_secret"),
    "import_token": (import_tokens, ("token_digest", "key_arn"), 1, "wrapped_private_key"),
    "store_password": (custom_key_stores, ("store_id",), 1, "wrapped_password"),
}


class SqlRootKey:
    """The RootKeyRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def check_value(self) -> bytes | None:
        q = sa.select(root_key_check.c.check_value).where(root_key_check.c.id == _ROW)
        found = self._c.execute(q).scalar()
        return None if found is None else bytes(found)

    def record(self, check_value: bytes, now: datetime) -> bytes:
        """Record ``check_value`` unless a value is recorded; return the value recorded now.
        ON CONFLICT DO NOTHING: a server that started at the same time and recorded first
        wins (on PostgreSQL this insert waits for its transaction), and the select that
        follows sees its value."""
        self._c.execute(
            upsert_insert(self._c, root_key_check)
            .values(id=_ROW, check_value=check_value, recorded=now.timestamp())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        recorded = self.check_value()
        assert recorded is not None  # inserted now or before
        return recorded

    def sample(self) -> WrappedSample | None:
        secret = self._c.execute(
            sa.select(access_keys.c.access_key_id, access_keys.c.wrapped_secret).limit(1)
        ).first()
        if secret is not None:
            return WrappedSample(
                "access_key", secret.access_key_id, 0, bytes(secret.wrapped_secret)
            )
        material = self._c.execute(
            sa.select(
                key_materials.c.key_arn, key_materials.c.version, key_materials.c.wrapped
            ).limit(1)
        ).first()
        if material is not None:
            return WrappedSample(
                "material", material.key_arn, material.version, bytes(material.wrapped)
            )
        return None

    def set_check_value(self, check_value: bytes, now: datetime) -> None:
        updated = self._c.execute(
            sa.update(root_key_check)
            .where(root_key_check.c.id == _ROW)
            .values(check_value=check_value, recorded=now.timestamp())
        )
        if updated.rowcount == 0:
            self.record(check_value, now)

    def registry(self) -> list[RootKeyEntry]:
        rows = self._c.execute(
            sa.select(root_keys).order_by(root_keys.c.created, root_keys.c.key_id)
        ).all()
        return [
            RootKeyEntry(
                r.key_id,
                bytes(r.check_value),
                r.provider,
                r.module,
                r.token_label,
                r.key_label,
                r.state,
            )
            for r in rows
        ]

    def register(self, entry: RootKeyEntry, now: datetime) -> None:
        self._c.execute(
            sa.insert(root_keys).values(
                key_id=entry.key_id,
                check_value=entry.check_value,
                provider=entry.provider,
                module=entry.module,
                token_label=entry.token_label,
                key_label=entry.key_label,
                state=entry.state,
                created=now.timestamp(),
            )
        )

    def set_state(self, key_id: str, state: str) -> None:
        self._c.execute(
            sa.update(root_keys).where(root_keys.c.key_id == key_id).values(state=state)
        )

    def wrapped_batch(
        self,
        kind: WrappedKind,
        after: tuple[str | int, ...] | None,
        not_prefix: bytes,
        limit: int,
    ) -> list[WrappedRow]:
        table, names, pk, column = _WRAPPED[kind]
        cols = [table.c[n] for n in names]
        wrapped = table.c[column]
        q = sa.select(*cols, wrapped).where(_not_under(wrapped, not_prefix))
        if after is not None:
            q = q.where(sa.tuple_(*cols[:pk]) > sa.tuple_(*after[:pk]))
        q = q.order_by(*cols[:pk]).limit(limit)
        return [
            WrappedRow(kind, tuple(row[: len(names)]), bytes(row[len(names)]))
            for row in self._c.execute(q)
        ]

    def count_not_under(self, kind: WrappedKind, not_prefix: bytes) -> int:
        table, _, _, column = _WRAPPED[kind]
        q = sa.select(sa.func.count()).where(_not_under(table.c[column], not_prefix))
        return int(self._c.execute(q).scalar() or 0)

    def replace_wrapped(self, row: WrappedRow, new: bytes) -> bool:
        table, names, pk, column = _WRAPPED[row.kind]
        q = sa.update(table).values({column: new}).where(table.c[column] == row.wrapped)
        for name, value in zip(names[:pk], row.names[:pk], strict=True):
            q = q.where(table.c[name] == value)
        return self._c.execute(q).rowcount == 1


def _not_under(column: sa.ColumnElement[bytes], prefix: bytes) -> sa.ColumnElement[bool]:
    """The column's value does not start with ``prefix`` (SQLite and PostgreSQL both take
    substr of a blob/bytea)."""
    return sa.func.substr(column, 1, len(prefix)) != sa.literal(prefix, sa.LargeBinary)
