"""The SQL store: SQLite (the default) or PostgreSQL behind SQLAlchemy Core, and the
transaction that gathers the repositories by concept."""

from __future__ import annotations

import fcntl
import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from strongroom.domain.enums import KeyState
from strongroom.storage import migrate
from strongroom.storage.schema import changes, grants, key_state_counts, keys, role_sessions
from strongroom.storage.sql.aliases import SqlAliases
from strongroom.storage.sql.changes import SqlChanges
from strongroom.storage.sql.custom_key_stores import SqlCustomKeyStores, SqlHsmClusters
from strongroom.storage.sql.errors import database_errors
from strongroom.storage.sql.faults import SqlFaults
from strongroom.storage.sql.grants import SqlGrants
from strongroom.storage.sql.identities import SqlIdentities
from strongroom.storage.sql.key_usage import SqlKeyUsage
from strongroom.storage.sql.keys import SqlKeys
from strongroom.storage.sql.material import SqlMaterial
from strongroom.storage.sql.notify import ChangeListener
from strongroom.storage.sql.parameters import SqlParameters
from strongroom.storage.sql.quotas import SqlQuotas
from strongroom.storage.sql.root_key import SqlRootKey
from strongroom.storage.sql.sessions import SqlSessions
from strongroom.storage.sql.tags import SqlTags

DATABASE_TIMEOUT_SECONDS = 5.0
"""How long PostgreSQL may leave this process without an answer (to a connection attempt,
or to data sent on a connection) before the request that waits for it fails."""


class SqlTransaction:
    """One database transaction; every repository runs its statements inside it."""

    def __init__(self, conn: sa.Connection) -> None:
        self.keys = SqlKeys(conn)
        self.material = SqlMaterial(conn)
        self.aliases = SqlAliases(conn)
        self.tags = SqlTags(conn)
        self.grants = SqlGrants(conn)
        self.identities = SqlIdentities(conn)
        self.sessions = SqlSessions(conn)
        self.changes = SqlChanges(conn)
        self.root_key = SqlRootKey(conn)
        self.key_usage = SqlKeyUsage(conn)
        self.hsm_clusters = SqlHsmClusters(conn)
        self.custom_key_stores = SqlCustomKeyStores(conn)
        self.faults = SqlFaults(conn)
        self.quotas = SqlQuotas(conn)
        self.parameters = SqlParameters(conn)


class SqlStore:
    """The database: SQLite (WAL, the default) or PostgreSQL (psycopg 3). Every entry
    point raises StorageError, never a SQLAlchemy error, when the database fails."""

    def __init__(self, url: str, *, timeout: float = DATABASE_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.timeout = timeout
        with database_errors():
            self.engine = _make_engine(url, timeout)
        # The same pool, with transactions that begin without the write lock (``_on_begin``).
        self._reader = self.engine.execution_options(**{_READ_ONLY: True})

    def migrate(self) -> None:
        with database_errors():
            migrate.upgrade(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """A transaction that commits when the block ends and rolls back on any error."""
        with database_errors(), self.engine.begin() as conn:
            yield SqlTransaction(conn)

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        """A transaction that only reads: it sees what was committed when it first reads
        (SQLite in WAL mode: one snapshot for the whole transaction; PostgreSQL, READ
        COMMITTED: each statement's), and takes no write lock, so it neither waits for a
        writer nor holds one up. It must not write."""
        with database_errors(), self._reader.begin() as conn:
            yield SqlTransaction(conn)

    def latest_change(self) -> int:
        q = sa.select(sa.func.coalesce(sa.func.max(changes.c.seq), 0))
        with database_errors(), self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def keys_in_state(self, state: KeyState) -> list[str]:
        """The ARNs of the keys in ``state``, read without taking the write lock."""
        q = sa.select(keys.c.arn).where(keys.c.state == state.value).order_by(keys.c.arn)
        with database_errors(), self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def changes_since(self, seq: int) -> tuple[int, set[str]]:
        """The newest change seq and the key ARNs changed after ``seq``."""
        q = sa.select(changes.c.seq, changes.c.key_arn).where(changes.c.seq > seq)
        with database_errors(), self.engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return seq, set()
        return max(r.seq for r in rows), {r.key_arn for r in rows}

    def counts(self, now: datetime) -> tuple[dict[str, int], int, int]:
        # The kept counts (``key_state_counts``), a few rows per account and Region, not a
        # read of every key; a state whose keys are all gone is left out, as a count of
        # the keys leaves it out. Grants are counted: the kept ones are per key and per
        # grantee on a key (``grant_counts``), no fewer rows than grants when most keys
        # have one grant or each grant its own grantee.
        by_state = (
            sa.select(key_state_counts.c.state, sa.func.sum(key_state_counts.c.key_count))
            .group_by(key_state_counts.c.state)
            .having(sa.func.sum(key_state_counts.c.key_count) > 0)
        )
        live = sa.select(sa.func.count()).where(role_sessions.c.expiration > now.timestamp())
        with database_errors(), self.engine.connect() as conn:
            states = {str(state): int(n) for state, n in conn.execute(by_state)}
            grant_count = int(
                conn.execute(sa.select(sa.func.count()).select_from(grants)).scalar_one()
            )
            sessions = int(conn.execute(live).scalar_one())
        return states, grant_count, sessions

    def listen_for_changes(self, on_change: Callable[[], None]) -> ChangeListener | None:
        if self.engine.dialect.name != "postgresql":
            return None
        listener = ChangeListener(self.engine.url, on_change, postgres_timeouts(self.timeout))
        listener.start()
        return listener

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """PostgreSQL: a session-level advisory lock on a connection held for the block.
        SQLite: an exclusive ``flock`` on ``<database>.<name>.lock`` beside the database
        file (the processes that share a SQLite database share its host)."""
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(
                hashlib.sha256(f"strongroom:{name}".encode()).digest()[:8], "big", signed=True
            )
            with database_errors(), self.engine.connect() as conn:
                held = bool(conn.execute(_TRY_LOCK, {"key": key}).scalar_one())
                conn.commit()
                try:
                    yield held
                finally:
                    if held:
                        conn.execute(_UNLOCK, {"key": key})
                        conn.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":  # one process: nobody to share with
            yield True
            return
        with open(f"{database}.{name}.lock", "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        with database_errors():
            self.engine.dispose()


_READ_ONLY = "strongroom_read_only"  # an execution option: the transaction only reads
_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(:key)")


def postgres_timeouts(seconds: float) -> dict[str, Any]:
    """libpq connection parameters that bound every wait on PostgreSQL to about
    ``seconds``: ``connect_timeout`` for a connection attempt (a host that does not answer
    would otherwise take the kernel's SYN retries, about 2 minutes), ``tcp_user_timeout``
    for data the server does not acknowledge on an open connection (otherwise TCP's
    retransmissions, about 15 minutes), and TCP keepalives so that an idle connection (the
    pool's, the change listener's) that the network cut is found dead too. A server that is
    only slow still acknowledges what it is sent: long statements are not cut."""
    whole = max(2, math.ceil(seconds))  # libpq takes whole seconds here, at least 2
    return {
        "connect_timeout": whole,
        "keepalives": 1,
        "keepalives_idle": whole,
        "keepalives_interval": max(1, math.ceil(seconds / 3)),
        "keepalives_count": 3,
        "tcp_user_timeout": int(seconds * 1000),
    }


def _make_engine(url: str, timeout: float = DATABASE_TIMEOUT_SECONDS) -> sa.Engine:
    if not url.startswith("sqlite"):
        # A request that needs a connection while all of the pool's are busy waits at most
        # ``timeout`` for one too.
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=8,
            max_overflow=8,
            pool_timeout=timeout,
            connect_args=postgres_timeouts(timeout),
        )
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when a transaction begins (SQLAlchemy
        # docs, "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Deleted rows are overwritten with zeros, not left in free pages: deleting imported
        # key material (its wrapped copy) is meant to erase it (SQLite "PRAGMA secure_delete").
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A transaction that may write takes the write lock up front: a deferred one that
        # later writes can fail with SQLITE_BUSY instead of waiting its turn. One that only
        # reads (``SqlStore.read``) begins deferred: its first read takes a WAL snapshot,
        # which no writer blocks (SQLite "Write-Ahead Logging", "Concurrency").
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
