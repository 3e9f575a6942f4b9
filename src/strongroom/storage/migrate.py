"""Apply the Alembic migrations that ship with Strongroom to a database.

Alembic itself is imported only when a database is not at the newest revision: every start
of a server (and of every admin command) checks the schema, and importing Alembic costs
more than the rest of that check (bench/README "Session 9")."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported when a migration runs, not with this module: the server's workers,
# which never migrate, are about 12 MB smaller without it (bench/memory_bench.py).

_SCRIPTS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"  # Alembic's: the revision a database is at


def alembic_config(connection: sa.Connection | None) -> Config:
    """Alembic's configuration over ``connection`` (None: to read the scripts only)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision of the scripts: each script's revision is its file's number
    (``versions/0015_listing_indexes.py`` is revision 0015, revising 0014)."""
    return max(p.name[:4] for p in (_SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(conn: sa.Connection) -> str | None:
    """The revision the database is at; None when it has no schema of Strongroom's yet."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    found = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if found is None else str(found)


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, by default the newest (idempotent)."""
    with engine.begin() as conn:
        if revision == "head" and current_revision(conn) == head_revision():
            return
        from alembic import command

        command.upgrade(alembic_config(conn), revision)
