"""A PostgreSQL that never answers makes the store fail within its timeout instead of
waiting for TCP: a real listening socket that accepts connections and says nothing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from strongroom.domain.errors import StorageError
from strongroom.storage.sql import SqlStore
from strongroom.storage.sql.store import postgres_timeouts

pytestmark = pytest.mark.unit


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel completes every TCP handshake (the listen backlog) while nobody
    ever reads or answers: what a hung or unreachable database server looks like."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_a_database_that_never_answers_fails_within_the_timeout(silent_port: int) -> None:
    store = SqlStore(f"postgresql+psycopg://nobody@127.0.0.1:{silent_port}/db", timeout=2.0)
    started = time.monotonic()
    with pytest.raises(StorageError):
        store.latest_change()
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 6.0, elapsed  # libpq's connect_timeout (2 s), not TCP's minutes
    store.close()


def test_the_timeouts_libpq_gets() -> None:
    assert postgres_timeouts(5.0) == {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 5000,
    }
    # libpq takes whole seconds for connect_timeout, at least 2 (it reads 1 as 2).
    short = postgres_timeouts(0.5)
    assert short["connect_timeout"] == 2 and short["tcp_user_timeout"] == 500
