"""Conversions between column values and domain values, and keyset positions, shared by
the SQL repositories."""

from __future__ import annotations

import functools
import importlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa

E = TypeVar("E", bound=StrEnum)


def upsert_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT on ``table`` that takes ON CONFLICT (the PostgreSQL or SQLite form, by the
    connection's dialect). The dialect's module is imported here, not with this module: the
    engine has imported its own already, and a SQLite server never needs PostgreSQL's
    (about 0.03 s of a start)."""
    return dialect_insert(conn.dialect.name, table)


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """``upsert_insert`` by the dialect's name (``conn.dialect.name``)."""
    name = "postgresql" if dialect == "postgresql" else "sqlite"
    return importlib.import_module(f"sqlalchemy.dialects.{name}").insert(table)


# Kept counts (key_counts, key_state_counts, grant_counts): one count per row of the
# table's primary key, moved by one in the transaction of the change. The statements name
# the row by parameters ``in_<key column>`` (``in_account_id``, ``in_region``, ...).


def counted_row(table: sa.Table) -> tuple[sa.ColumnElement[bool], ...]:
    """The condition on the row of ``table`` that the ``in_<key column>`` parameters name."""
    return tuple(c == sa.bindparam(f"in_{c.name}") for c in table.primary_key.columns)


@functools.cache
def count_up(dialect: str, table: sa.Table, count: str) -> sa.Insert:
    """One more in column ``count`` of ``table``'s row that the parameters name: the row's
    first, or one added to its count (the row stays locked until the transaction ends).
    Made once per dialect (``dialect_insert``)."""
    key = list(table.primary_key.columns)
    first = dialect_insert(dialect, table).values(
        {**{c.name: sa.bindparam(f"in_{c.name}") for c in key}, count: 1}
    )
    return first.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=key, set_={count: table.c[count] + 1}
    )


def count_down(table: sa.Table, count: str) -> sa.Update:
    """One less in column ``count`` of ``table``'s row that the parameters name."""
    return table.update().where(*counted_row(table)).values({count: table.c[count] - 1})


def ts(value: datetime | None) -> float | None:
    """A moment as the epoch seconds the tables store."""
    return None if value is None else value.timestamp()


def dt(value: float | None) -> datetime | None:
    """Stored epoch seconds as a UTC moment."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def enum(kind: type[E], value: str | None) -> E | None:
    return None if value is None else kind(value)


def value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def after_position(
    q: sa.Select[Any],
    created: sa.ColumnElement[Any],
    ident: sa.ColumnElement[Any],
    position: tuple[datetime, str] | None,
) -> sa.Select[Any]:
    """Rows after the (creation date, id) ``position``, in that order: keyset pagination
    that still continues when the row a page ended on is gone.

    The condition is a row-value comparison, ``(created, ident) > (t, id)``, which SQLite
    (3.15 and later) and PostgreSQL both turn into a seek in an index that holds the
    listing's equality columns then ``created, ident``: a page deep in the listing costs
    what the first page costs. (The equivalent ``created > t OR (created = t AND ident >
    id)`` makes SQLite read every row from the start of the listing.)"""
    if position is not None:
        anchor, last = position[0].timestamp(), position[1]
        q = q.where(sa.tuple_(created, ident) > sa.tuple_(anchor, last))
    return q.order_by(created, ident)
