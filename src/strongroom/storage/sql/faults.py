"""Injected faults in SQL: the ``faults`` table."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from strongroom.storage.ports import FaultRecord
from strongroom.storage.schema import faults


class SqlFaults:
    """The FaultRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def put(self, fault: FaultRecord) -> None:
        # Delete then insert, in one transaction: the same statements on SQLite and
        # PostgreSQL, and the row's created time is the newest setting's.
        self._c.execute(
            faults.delete().where(
                faults.c.account_id == fault.account_id, faults.c.operation == fault.operation
            )
        )
        self._c.execute(
            faults.insert().values(
                account_id=fault.account_id,
                operation=fault.operation,
                error_code=fault.error_code,
                rate=fault.rate,
                latency_ms=fault.latency_ms,
                created=fault.created.timestamp(),
            )
        )

    def delete(self, account_id: str | None, operation: str | None) -> int:
        statement = faults.delete()
        if account_id is not None:
            statement = statement.where(faults.c.account_id == account_id)
        if operation is not None:
            statement = statement.where(faults.c.operation == operation)
        return int(self._c.execute(statement).rowcount)

    def list(self) -> list[FaultRecord]:
        rows = self._c.execute(
            sa.select(faults).order_by(faults.c.account_id, faults.c.operation)
        ).all()
        return [
            FaultRecord(
                account_id=row.account_id,
                operation=row.operation,
                error_code=row.error_code,
                rate=row.rate,
                latency_ms=row.latency_ms,
                created=datetime.fromtimestamp(row.created, UTC),
            )
            for row in rows
        ]
