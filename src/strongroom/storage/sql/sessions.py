"""Role sessions in SQL: the ``role_sessions`` table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.models import Principal
from strongroom.storage.ports import SessionRecord
from strongroom.storage.schema import principals, role_sessions

_WITH_ROLE = sa.select(
    role_sessions,
    principals.c.arn,
    principals.c.account_id,
    principals.c.kind,
    principals.c.name,
).join(principals, principals.c.arn == role_sessions.c.role_arn)


def _session(r: sa.Row[Any]) -> SessionRecord:
    return SessionRecord(
        access_key_id=r.access_key_id,
        role=Principal(r.arn, r.account_id, r.kind, r.name),
        session_name=r.session_name,
        wrapped_secret=bytes(r.wrapped_secret),
        token_sha256=bytes(r.token_sha256),
        created=datetime.fromtimestamp(r.created, UTC),
        expiration=datetime.fromtimestamp(r.expiration, UTC),
    )


class SqlSessions:
    """The SessionRepository of one transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._c = conn

    def insert(self, record: SessionRecord) -> None:
        self._c.execute(
            role_sessions.insert().values(
                access_key_id=record.access_key_id,
                role_arn=record.role.arn,
                session_name=record.session_name,
                wrapped_secret=record.wrapped_secret,
                token_sha256=record.token_sha256,
                created=record.created.timestamp(),
                expiration=record.expiration.timestamp(),
            )
        )

    def get(self, access_key_id: str) -> SessionRecord | None:
        q = _WITH_ROLE.where(role_sessions.c.access_key_id == access_key_id)
        r = self._c.execute(q).first()
        return None if r is None else _session(r)

    def delete_expired(self, before: datetime) -> int:
        """Forget temporary credentials that expired before ``before``; how many."""
        res = self._c.execute(
            role_sessions.delete().where(role_sessions.c.expiration < before.timestamp())
        )
        return int(res.rowcount or 0)

    def list_live(self, role_arn: str, now: datetime) -> list[SessionRecord]:
        """A role's sessions that have not expired at ``now``, by access key id."""
        q = _WITH_ROLE.where(
            role_sessions.c.role_arn == role_arn,
            role_sessions.c.expiration > now.timestamp(),
        ).order_by(role_sessions.c.access_key_id)
        return [_session(r) for r in self._c.execute(q)]

    def delete_for_role(self, role_arn: str) -> int:
        """Forget every session of a role, live or expired; how many."""
        res = self._c.execute(role_sessions.delete().where(role_sessions.c.role_arn == role_arn))
        return int(res.rowcount or 0)
