"""SQLAlchemy Core implementation of the storage ports, for SQLite and PostgreSQL: one
module per concept, gathered by ``store``."""

from __future__ import annotations

from strongroom.storage.sql.store import SqlStore, SqlTransaction

__all__ = ["SqlStore", "SqlTransaction"]
