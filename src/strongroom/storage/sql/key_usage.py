"""Key last usage in SQL: the ``key_last_usage`` and ``key_usage_tracking`` tables."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa

from strongroom.domain.models import KeyUse
from strongroom.storage.schema import key_last_usage, key_usage_tracking
from strongroom.storage.sql._rows import upsert_insert

_ROW = 1  # key_usage_tracking's only row


class SqlKeyUsage:
    """The KeyUsageRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def get(self, key_arn: str) -> KeyUse | None:
        row = self._c.execute(
            sa.select(key_last_usage).where(key_last_usage.c.key_arn == key_arn)
        ).first()
        if row is None:
            return None
        return KeyUse(
            operation=row.operation,
            timestamp=datetime.fromtimestamp(row.used, UTC),
            event_id=row.event_id,
            request_id=row.request_id,
        )

    def record(self, uses: Mapping[str, KeyUse]) -> None:
        """One upsert per batch; the row changes only when the new use is newer
        (``ON CONFLICT ... DO UPDATE ... WHERE used < excluded.used``), so the newest use
        stays whichever process or node writes last."""
        if not uses:
            return
        insert = upsert_insert(self._c, key_last_usage)
        statement = insert.on_conflict_do_update(
            index_elements=["key_arn"],
            set_={
                "operation": insert.excluded.operation,
                "used": insert.excluded.used,
                "event_id": insert.excluded.event_id,
                "request_id": insert.excluded.request_id,
            },
            where=key_last_usage.c.used < insert.excluded.used,
        )
        self._c.execute(
            statement,
            [
                {
                    "key_arn": arn,
                    "operation": use.operation,
                    "used": use.timestamp.timestamp(),
                    "event_id": use.event_id,
                    "request_id": use.request_id,
                }
                for arn, use in uses.items()
            ],
        )

    def tracking_start(self) -> datetime:
        started = self._c.execute(
            sa.select(key_usage_tracking.c.started).where(key_usage_tracking.c.id == _ROW)
        ).scalar_one()
        return datetime.fromtimestamp(started, UTC)
