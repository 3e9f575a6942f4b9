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
    add_root_key_options(parser)


# The root key options, as the settings name them (server/settings.py).
ROOT_KEY_OPTIONS = (
    "root_key",
    "pkcs11_module",
    "pkcs11_token_label",
    "pkcs11_key_label",
    "pkcs11_pin_env",
    "pkcs11_pin_file",
)


def add_root_key_options(parser: argparse.ArgumentParser) -> None:
    """Where the root key is (README "Root key in an HSM"). There is no PIN option: a
    command line is visible to every user of the machine."""
    parser.add_argument(
        "--root-key",
        metavar="PROVIDER",
        help="root key provider: file (DATA_DIR/root.key, the default), pkcs11 (a key in a "
        "PKCS#11 token: the --pkcs11-* options) or softhsm (a SoftHSM2 token the first "
        "start makes under DATA_DIR/softhsm) (STRONGROOM_ROOT_KEY)",
    )
    parser.add_argument(
        "--pkcs11-module",
        type=Path,
        metavar="PATH",
        help="the HSM's PKCS#11 library (STRONGROOM_PKCS11_MODULE)",
    )
    parser.add_argument(
        "--pkcs11-token-label",
        metavar="LABEL",
        help="label of the token that holds the root key (STRONGROOM_PKCS11_TOKEN_LABEL)",
    )
    parser.add_argument(
        "--pkcs11-key-label",
        metavar="LABEL",
        help="label of the root key in the token (default strongroom-root; "
        "STRONGROOM_PKCS11_KEY_LABEL)",
    )
    parser.add_argument(
        "--pkcs11-pin-env",
        metavar="NAME",
        help="name of the environment variable that holds the token's user PIN "
        "(STRONGROOM_PKCS11_PIN_ENV)",
    )
    parser.add_argument(
        "--pkcs11-pin-file",
        type=Path,
        metavar="FILE",
        help="file (mode 0600) that holds the token's user PIN (STRONGROOM_PKCS11_PIN_FILE)",
    )


def settings_from(args: argparse.Namespace, **extra: object) -> Settings:
    return load_settings(
        getattr(args, "config", None),
        data_dir=args.data_dir,
        database_url=args.database_url,
        account=args.account,
        **{name: getattr(args, name, None) for name in ROOT_KEY_OPTIONS if name not in extra},
        **extra,
    )
