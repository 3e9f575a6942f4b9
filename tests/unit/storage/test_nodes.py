"""What processes sharing one database use to agree: ``Store.exclusive`` (one process runs
a job at a time) and, on PostgreSQL, ``Store.listen_for_changes`` (LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from strongroom.storage.sql.store import SqlStore


def test_one_process_at_a_time_holds_a_job(shared_url: str) -> None:
    first, second = SqlStore(shared_url), SqlStore(shared_url)  # two processes: two engines
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


def test_a_committed_change_is_notified_to_listeners(shared_url: str) -> None:
    if shared_url.startswith("sqlite"):
        store = SqlStore(shared_url)
        assert store.listen_for_changes(lambda: None) is None  # SQLite: processes poll
        store.close()
        return
    writer, reader = SqlStore(shared_url), SqlStore(shared_url)
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
