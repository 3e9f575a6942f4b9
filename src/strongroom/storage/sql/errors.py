"""The one place where SQLAlchemy's errors become the domain's StorageError."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from strongroom.domain.errors import StorageError


@contextmanager
def database_errors() -> Iterator[None]:
    """Raise StorageError, naming only the kind of failure, for any SQLAlchemy (and so
    DBAPI) error in the block; the original stays chained for the log."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {type(exc).__name__}") from exc
