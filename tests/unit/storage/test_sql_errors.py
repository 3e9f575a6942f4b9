"""Every entry point of the SQL store turns a database failure into StorageError, on a real
SQLite file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.domain.enums import KeyState
from strongroom.domain.errors import StorageError
from strongroom.storage.sql import SqlStore

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def _record_change(store: SqlStore) -> None:
    with store.transaction() as tx:
        tx.changes.record("arn:aws:kms:us-east-1:111122223333:key/k", NOW)


ENTRY_POINTS: dict[str, Callable[[SqlStore], Any]] = {
    "migrate": lambda s: s.migrate(),
    "transaction": _record_change,
    "latest_change": lambda s: s.latest_change(),
    "keys_in_state": lambda s: s.keys_in_state(KeyState.CREATING),
    "changes_since": lambda s: s.changes_since(0),
}


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'strongroom.db'}")
    store.migrate()
    yield store
    store.close()


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_file_that_is_no_database_raises_storage_error(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database, " * 512)
    store = SqlStore(f"sqlite:///{path}")
    try:
        with pytest.raises(StorageError, match=r"^database error: \w+$"):
            ENTRY_POINTS[entry](store)
    finally:
        store.close()


@pytest.mark.parametrize("entry", ["transaction", "latest_change", "changes_since"])
def test_a_missing_table_raises_storage_error(migrated: SqlStore, entry: str) -> None:
    with migrated.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE changes"))
    with pytest.raises(StorageError, match="OperationalError"):
        ENTRY_POINTS[entry](migrated)


def test_keys_in_state_without_the_keys_table_raises_storage_error(migrated: SqlStore) -> None:
    with migrated.engine.begin() as conn:
        conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
        conn.execute(sa.text("DROP TABLE keys"))
    with pytest.raises(StorageError, match="OperationalError"):
        migrated.keys_in_state(KeyState.ENABLED)


def test_a_failed_transaction_writes_nothing(migrated: SqlStore) -> None:
    before = migrated.latest_change()
    with pytest.raises(StorageError, match="IntegrityError"), migrated.transaction() as tx:
        tx.changes.record("arn:aws:kms:us-east-1:111122223333:key/k", NOW)
        tx.identities.ensure_account("111122223333", NOW)
        root = tx.identities.get_principal("arn:aws:iam::111122223333:root")
        assert root is not None
        tx.identities.insert_principal(root, NOW)  # the same ARN twice
    assert migrated.latest_change() == before
    with migrated.transaction() as tx:
        assert tx.identities.list_accounts() == []
