"""The change feed in SQL: the ``changes`` table, one row per changed ARN."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from strongroom.storage.schema import changes


class SqlChanges:
    """The ChangeRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def record(self, arn: str, now: datetime) -> None:
        self._c.execute(changes.insert().values(key_arn=arn, changed_at=now.timestamp()))

    def prune(self, before: datetime) -> None:
        """Forget changes older than every process's poll could still need."""
        self._c.execute(changes.delete().where(changes.c.changed_at < before.timestamp()))
