"""Apply the Alembic migrations that ship with Strongroom to a database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(connection: sa.Connection | None) -> Config:
    """Alembic's configuration over ``connection`` (None: to read the scripts only)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, by default the newest (idempotent)."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
