"""A consistent copy of every table of a database as rows, and loading such rows into an
empty database of either backend (``strongroom admin backup`` and ``restore``).

The rows are backend-neutral: each table is a list of column names and, per row, a JSON
array of its values in that order — text, numbers and booleans as JSON has them, NULL as
null, and the values of binary columns (wrapped secrets, check values) as base64 text.
A float goes through JSON exactly (Python writes the shortest repr that reads back the
same double), so times in epoch seconds come back bit for bit.

Consistency: on SQLite, SQLite's online backup API copies the database in one step under
one read transaction (writers in WAL mode go on meanwhile) into a private file, which is
then read; on PostgreSQL one REPEATABLE READ, READ ONLY transaction reads every table, so
every table is seen as of the same moment and nothing a server writes meanwhile waits.
Either way, every transaction committed before the copy began is in it.
"""

from __future__ import annotations

import base64
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from strongroom.storage import migrate

VERSION_TABLE = migrate.VERSION_TABLE  # Alembic's: the revision, recorded apart from the rows
_BATCH = 1000  # rows inserted per statement when loading


@dataclass(frozen=True, slots=True)
class TableShape:
    """A table as a snapshot has it: its columns, in the order each row lists its values,
    and which of them are binary (base64 in the rows) or boolean."""

    name: str
    columns: tuple[str, ...]
    binary: tuple[str, ...]
    boolean: tuple[str, ...]


class Snapshot:
    """An open, consistent read of a database: its backend, its Alembic revision, and the
    rows of every table (tables in the order their foreign keys need for loading)."""

    def __init__(self, backend: str, revision: str | None, conn: sa.Connection) -> None:
        self.backend = backend
        self.revision = revision
        self._conn = conn
        metadata = sa.MetaData()
        metadata.reflect(bind=conn)
        self._tables = [t for t in metadata.sorted_tables if t.name != VERSION_TABLE]

    def shapes(self) -> list[TableShape]:
        return [_shape(table) for table in self._tables]

    def rows(self, name: str) -> Iterator[list[Any]]:
        """The rows of table ``name`` as JSON-ready lists, in primary-key order."""
        table = next(t for t in self._tables if t.name == name)
        shape = _shape(table)
        order = list(table.primary_key.columns) or list(table.columns)
        result = self._conn.execution_options(yield_per=_BATCH).execute(
            sa.select(*[table.c[c] for c in shape.columns]).order_by(*order)
        )
        binary = [i for i, c in enumerate(shape.columns) if c in shape.binary]
        for row in result:
            values = list(row)
            for i in binary:
                if values[i] is not None:
                    values[i] = base64.b64encode(bytes(values[i])).decode("ascii")
            yield values


@contextmanager
def consistent_read(url: str) -> Iterator[Snapshot]:
    """A Snapshot of the database at ``url`` (SQLite or PostgreSQL), read while servers
    write it. Raises sqlalchemy errors and sqlite3.Error as the drivers give them."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with _sqlite_copy(parsed.database or "") as copy:
            engine = sa.create_engine(f"sqlite:///{copy}")
            try:
                with engine.connect() as conn:
                    yield Snapshot("sqlite", _revision(conn), conn)
            finally:
                engine.dispose()
        return
    engine = sa.create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield Snapshot(parsed.get_backend_name(), _revision(conn), conn)
    finally:
        engine.dispose()


@contextmanager
def _sqlite_copy(path: str) -> Iterator[Path]:
    """The SQLite database at ``path`` copied by the online backup API, in one step (so
    under one read transaction), to a private temporary file removed afterwards."""
    if not path or not Path(path).is_file():
        raise sqlite3.OperationalError(f"no SQLite database at {path}")
    with tempfile.TemporaryDirectory(prefix="strongroom-snapshot-") as tmp:
        copy = Path(tmp) / "copy.db"
        source = sqlite3.connect(path, timeout=30)
        try:
            target = sqlite3.connect(copy)
            try:
                source.backup(target)  # pages=-1: every page in one step
            finally:
                target.close()
        finally:
            source.close()
        yield copy


def _revision(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _shape(table: sa.Table) -> TableShape:
    columns = tuple(c.name for c in table.columns)
    binary = tuple(c.name for c in table.columns if isinstance(c.type, sa.LargeBinary))
    boolean = tuple(c.name for c in table.columns if isinstance(c.type, sa.Boolean))
    return TableShape(table.name, columns, binary, boolean)


# -- loading --------------------------------------------------------------------------------


def head_revision() -> str:
    """The newest revision of the migrations this version ships."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations (the head or older)."""
    return revision in {script.revision for script in _scripts().walk_revisions()}


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config(None))


def table_names(engine: sa.Engine) -> list[str]:
    """The tables of the database (its default schema), Alembic's among them."""
    with engine.connect() as conn:
        return sorted(sa.inspect(conn).get_table_names())


def load(
    engine: sa.Engine,
    revision: str,
    tables: Iterable[tuple[TableShape, Iterable[list[Any]]]],
    progress: Callable[[str, int], None] = lambda table, rows: None,
) -> None:
    """Into the empty database of ``engine``: the schema of ``revision``, then the rows of
    each table (in the order given, which must satisfy foreign keys), then every later
    migration up to this version's head. ``progress(table, rows so far)`` is called as
    rows go in. Raises ValueError for a table or column the schema of ``revision`` does
    not have, and the driver's errors as they come."""
    migrate.upgrade(engine, revision)
    metadata = sa.MetaData()
    metadata.reflect(bind=engine)
    with engine.begin() as conn:
        # Rows the migrations made (key_usage_tracking's start, ...) give way to the
        # backup's: the database was empty before, so they are nobody's else.
        for table in reversed(metadata.sorted_tables):
            if table.name != VERSION_TABLE:
                conn.execute(table.delete())
        for shape, rows in tables:
            if shape.name not in metadata.tables:
                raise ValueError(f"table {shape.name} is not in the schema of revision {revision}")
            table = metadata.tables[shape.name]
            missing = [c for c in shape.columns if c not in table.c]
            if missing:
                raise ValueError(f"table {shape.name} has no column {missing[0]} at {revision}")
            count = 0
            for batch in _batches(_decoded(shape, rows)):
                conn.execute(table.insert(), batch)
                count += len(batch)
                progress(shape.name, count)
        if engine.dialect.name == "postgresql":
            _advance_sequences(conn, metadata)
    migrate.upgrade(engine, "head")


def _decoded(shape: TableShape, rows: Iterable[list[Any]]) -> Iterator[dict[str, Any]]:
    binary = {i for i, c in enumerate(shape.columns) if c in shape.binary}
    width = len(shape.columns)
    for values in rows:
        if len(values) != width:
            raise ValueError(f"table {shape.name}: a row has {len(values)} values, not {width}")
        yield {
            column: (base64.b64decode(value) if i in binary and value is not None else value)
            for i, (column, value) in enumerate(zip(shape.columns, values, strict=True))
        }


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _advance_sequences(conn: sa.Connection, metadata: sa.MetaData) -> None:
    """Set each serial column's sequence past the values loaded, so that the next row a
    server inserts (a ``changes`` entry) does not collide with a restored one."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            sequence = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            ).scalar()
            if sequence is None:
                continue
            conn.execute(
                sa.text(
                    f'SELECT setval(:s, COALESCE(MAX("{column.name}"), 1), '
                    f'MAX("{column.name}") IS NOT NULL) FROM "{table.name}"'
                ),
                {"s": sequence},
            )


def drop_everything(engine: sa.Engine) -> None:
    """Drop every table of the database (undoing a restore that failed into a database
    that was empty before it)."""
    metadata = sa.MetaData()
    metadata.reflect(bind=engine)
    metadata.drop_all(bind=engine)
