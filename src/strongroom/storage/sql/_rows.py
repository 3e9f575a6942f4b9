"""Conversions between column values and domain values, and keyset positions, shared by
the SQL repositories."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa

E = TypeVar("E", bound=StrEnum)


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
    that still continues when the row a page ended on is gone."""
    if position is not None:
        anchor, last = position[0].timestamp(), position[1]
        q = q.where(sa.or_(created > anchor, sa.and_(created == anchor, ident > last)))
    return q.order_by(created, ident)

