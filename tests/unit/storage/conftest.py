"""Fixtures of the SQL storage tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strongroom.storage.sql import SqlStore


@pytest.fixture
def store(shared_url: str) -> Iterator[SqlStore]:
    """A migrated database of its own: SQLite, then PostgreSQL when the tests have one."""
    s = SqlStore(shared_url)
    s.migrate()
    yield s
    s.close()
