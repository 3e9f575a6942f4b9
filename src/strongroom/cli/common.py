"""Options shared by commands that open the data directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from strongroom.server.settings import Settings, load_settings


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    """The data directory, database and account options, and ``--config`` again so that it
    may follow the command (``strongroom serve --config FILE``) as well as precede it."""
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,  # absent here: keep the one given before the command
        help="TOML file of settings (also STRONGROOM_CONFIG)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="data directory (default ./strongroom-data; STRONGROOM_DATA_DIR)",
    )
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
        "(default: SQLite in the data directory; STRONGROOM_DATABASE_URL)",
    )
    parser.add_argument(
        "--account", help="the default account id (default 111122223333; STRONGROOM_ACCOUNT)"
    )


def settings_from(args: argparse.Namespace, **extra: object) -> Settings:
    return load_settings(
        getattr(args, "config", None),
        data_dir=args.data_dir,
        database_url=args.database_url,
        account=args.account,
        **extra,
    )
