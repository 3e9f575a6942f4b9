"""What processes sharing one database use to agree: ``Store.exclusive`` (one process runs
a job at a time) and, on PostgreSQL, ``Store.listen_for_changes`` (LISTEN/NOTIFY)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import POSTGRES_ENV, _drop_postgres_database, _fresh_postgres_database
from strongroom.storage.sql.store import SqlStore


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    made, name = _fresh_postgres_database(base)
    yield made
    _drop_postgres_database(base, name)


def test_one_process_at_a_time_holds_a_job(url: str) -> None:
    first, second = SqlStore(url), SqlStore(url)  # as two processes, each its own engine
    try:
        first.migrate()
        with first.exclusive("periodic") as mine:
            assert mine
            with second.exclusive("periodic") as theirs:
                assert not theirs
            with second.exclusive("replication") as other_job:
                assert other_job
        with second.exclusive("periodic") as theirs:  # released with the block
            assert theirs
    finally:
        first.close()
        second.close()


def test_a_committed_change_is_notified_to_listeners(url: str) -> None:
    if url.startswith("sqlite"):
        store = SqlStore(url)
        assert store.listen_for_changes(lambda: None) is None  # SQLite: processes poll
        store.close()
        return
    writer, reader = SqlStore(url), SqlStore(url)
    writer.migrate()
    notified = threading.Event()
    listening = reader.listen_for_changes(notified.set)
    assert listening is not None
    try:
        assert listening.listening.wait(5)  # type: ignore[attr-defined]
        with writer.transaction() as tx:
            tx.changes.record("arn:aws:kms:us-east-1:111122223333:key/x", datetime.now(UTC))
            assert not notified.wait(0.2)  # not before the commit
        assert notified.wait(5)
    finally:
        listening.stop()
        writer.close()
        reader.close()
