"""The change feed in SQL: the ``changes`` table, one row per changed ARN; on PostgreSQL
each transaction that records one also notifies the listening nodes (``sql.notify``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from strongroom.storage.schema import changes
from strongroom.storage.sql.notify import NOTIFY


class SqlChanges:
    """The ChangeRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn
        self._notify = conn.dialect.name == "postgresql"

    def record(self, arn: str, now: datetime) -> None:
        self._c.execute(changes.insert().values(key_arn=arn, changed_at=now.timestamp()))
        if self._notify:  # delivered on commit: once a transaction is enough
            self._c.execute(NOTIFY)
            self._notify = False

    def prune(self, before: datetime) -> None:
        """Forget changes older than every process's poll could still need."""
        self._c.execute(changes.delete().where(changes.c.changed_at < before.timestamp()))
