"""The root key's binding in SQL: the ``root_key_check`` table, and a wrapped secret to test
a root key on."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from strongroom.storage.ports import WrappedSample
from strongroom.storage.schema import access_keys, key_materials, root_key_check

_ROW = 1  # the table's only row


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
        dialect = postgresql if self._c.dialect.name == "postgresql" else sqlite
        self._c.execute(
            dialect.insert(root_key_check)
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
