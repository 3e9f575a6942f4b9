"""The checks a start makes before it writes anything, and the one-line errors they give.

Each failure is a StartError (a ValueError: the command prints ``strongroom: <message>``
and exits 2): one line that names what is wrong and how to fix it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

from strongroom.domain.errors import StorageError

POSTGRES_DRIVER = "postgresql+psycopg"
_SQLITE_DRIVERS = ("sqlite", "sqlite+pysqlite")
_URL_FORM = "postgresql+psycopg://USER@HOST:PORT/DATABASE"


class StartError(ValueError):
    """A start that cannot go on; the message is one line: what is wrong, how to fix it."""


def check_data_dir(path: Path) -> None:
    """StartError unless ``path`` is a writable directory or can be made as one.

    ``os.access`` answers for this process, and root too is refused on a read-only file
    system; a path under a regular file fails for everyone."""
    if path.exists():
        if not path.is_dir():
            raise StartError(
                f"data directory {path} is not a directory: give --data-dir a directory "
                "or a path that does not exist yet"
            )
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            raise StartError(
                f"data directory {path} is on a read-only file system: mount it read-write "
                "or choose another --data-dir"
            )
        if not os.access(path, os.W_OK | os.X_OK):
            raise StartError(
                f"data directory {path} is not writable: give this user write access to it "
                "or choose another --data-dir"
            )
        return
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise StartError(
            f"cannot make data directory {path}: {parent} is not a directory; "
            "choose another --data-dir"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StartError(
            f"cannot make data directory {path}: {parent} is not writable; give this user "
            "write access to it or choose another --data-dir"
        )


def make_data_dir(path: Path) -> None:
    """Make the data directory (mode 0700) unless it exists; StartError when that fails."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StartError(
            f"cannot make data directory {path}: {exc.strerror}; choose another --data-dir"
        ) from None


def check_database_url(url: str) -> None:
    """StartError unless ``url`` names a database Strongroom runs on: PostgreSQL through
    psycopg 3, or SQLite."""
    try:
        parsed = sa.engine.make_url(url)
    except ArgumentError:
        raise StartError(
            f"--database-url {url!r} is not a database URL: use {_URL_FORM} "
            "(or leave it out for SQLite in the data directory)"
        ) from None
    driver = parsed.drivername
    if driver == POSTGRES_DRIVER or driver in _SQLITE_DRIVERS:
        return
    if driver.startswith("postgres"):
        fixed = parsed.set(drivername=POSTGRES_DRIVER).render_as_string(hide_password=True)
        raise StartError(
            f"--database-url: '{driver}://' is not supported: use '{POSTGRES_DRIVER}://' "
            f"(psycopg 3), e.g. {fixed}"
        )
    raise StartError(
        f"--database-url: unsupported database '{parsed.get_backend_name()}': Strongroom "
        f"runs on PostgreSQL ({_URL_FORM}) or SQLite (leave --database-url out)"
    )


def shown_url(url: str) -> str:
    """``url`` as a message shows it: without its password."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)


@contextmanager
def opening_database(url: str) -> Iterator[None]:
    """Turn a database that cannot be reached or opened into a StartError naming the
    database, the reason the driver gives (its first line) and what to check."""
    try:
        yield
    except StorageError as exc:
        cause = exc.__cause__
        reason = str(getattr(cause, "orig", None) or cause or exc).strip().splitlines()[0]
        if "does not exist" in reason:
            hint = "create the database (createdb) or fix --database-url"
        elif "refused" in reason or "resolve host" in reason:
            hint = "is the database server running there? Check --database-url"
        else:
            hint = "check --database-url and that the database server is running"
        raise StartError(
            f"cannot open the database at {shown_url(url)}: {reason}; {hint}"
        ) from None


@contextmanager
def undone_on_failure(data_dir: Path) -> Iterator[list[Path]]:
    """Leave nothing half-made when the block fails: a data directory it made is removed
    with what is in it; in a data directory that was there, the files named in the list
    the block gets (those it made) are removed."""
    existed = data_dir.exists()
    made: list[Path] = []
    try:
        yield made
    except BaseException:
        if not existed:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            for path in reversed(made):
                path.unlink(missing_ok=True)
        raise
