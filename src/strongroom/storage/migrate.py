"""Apply the Alembic migrations that ship with Strongroom to a database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported when a migration runs, not with this module: the server's workers,
# which never migrate, are about 12 MB smaller without it (bench/memory_bench.py).

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(connection: sa.Connection | None) -> Config:
    """Alembic's configuration over ``connection`` (None: to read the scripts only)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, by default the newest (idempotent)."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
