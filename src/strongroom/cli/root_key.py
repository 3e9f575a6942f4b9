"""``strongroom admin root-key``: move a database onto a root key in a token (``migrate``),
onto a new key in the token (``rotate``), and show the registry (``status``), while the
servers keep serving. README "Root key in an HSM"."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strongroom.cli.common import add_storage_options, settings_from
from strongroom.server.settings import Settings

if TYPE_CHECKING:
    from strongroom.storage.ports import Store


def register(admin: Any) -> None:
    """Add ``root-key`` to the ``admin`` subcommands."""
    p = admin.add_parser(
        "root-key",
        help="migrate the root key onto a token, rotate it, show it",
        description="Move the database's root key while the servers keep serving.",
    )
    sub = p.add_subparsers(dest="root_key_command", required=True, metavar="ACTION")
    m = sub.add_parser(
        "migrate",
        help="re-wrap every secret under a key in a token and remove the root key file",
        description="Move a file-root database onto a key in a token: --to softhsm (a "
        "SoftHSM2 token made under DATA_DIR) or --to pkcs11 (the --pkcs11-* options name "
        "the token, the key label and the PIN source). Every server of the database must "
        "be able to open the token first (README 'Root key in an HSM'). Shows progress; "
        "run it again to finish a migration that stopped.",
    )
    m.add_argument("--to", required=True, choices=["softhsm", "pkcs11"])
    r = sub.add_parser(
        "rotate",
        help="re-wrap every secret under a new key in the token and destroy the old key",
        description="Generate a new root key in the token of the active one, re-wrap every "
        "secret under it, then destroy the old key. Run it again to finish a rotation that "
        "stopped.",
    )
    s = sub.add_parser("status", help="the root keys of the database and their states")
    for q in (m, r):
        q.add_argument(
            "--grace",
            type=float,
            default=3.0,
            metavar="SECONDS",
            help="how long every server is given to notice a new key (default 3; more "
            "than the servers' change_poll_seconds)",
        )
        q.add_argument(
            "--batch-size",
            type=int,
            default=100,
            metavar="N",
            help="rows re-wrapped per transaction (default 100)",
        )
    for q in (m, r, s):
        add_storage_options(q)
        q.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from strongroom.server.startup import check_data_dir, opening_database
    from strongroom.server.wiring import open_store

    settings = settings_from(args)
    check_data_dir(settings.data_dir)
    if settings.database_url is None and not settings.sqlite_path.exists():
        raise ValueError(f"no database at {settings.sqlite_path}: is --data-dir right?")
    store = open_store(settings)
    try:
        with opening_database(settings.db_url):
            store.migrate()
        result: Any = _move(args, settings, store)
    finally:
        store.close()
    print(json.dumps(result, indent=2))
    return 0


def _move(args: argparse.Namespace, settings: Settings, store: Store) -> Any:
    """``migrate`` and ``rotate`` between their intent and event in the audit trail
    (``cli/admin_trail.py``): a move refused before it began (a StartError) leaves its
    event with the error; one that stopped part way (a token gone) leaves its intent alone,
    which ``audit unmatched`` lists (the run that finishes the move has its own intent and
    event). ``status`` only reads."""
    from strongroom.cli.admin_events import audited
    from strongroom.cli.admin_trail import run_recorded
    from strongroom.domain.errors import KeyStoreError
    from strongroom.server.wiring import open_root_key

    recorded = audited(args)
    if recorded is None:
        return _status(store)
    try:
        return run_recorded(
            settings,
            open_root_key(settings, store),
            args,
            recorded,
            lambda: _moved(args, settings, store),
            datetime.now(UTC),
        )
    except KeyStoreError as exc:  # a token gone, a row that does not unwrap
        raise ValueError(
            f"{exc}; the {args.root_key_command} stopped where it was: run the command again "
            "to resume it"
        ) from None


def _moved(args: argparse.Namespace, settings: Settings, store: Store) -> dict[str, Any]:
    from strongroom.server import root_key_moves

    if args.root_key_command == "migrate":
        return root_key_moves.migrate(settings, store, args.to, _say, args.grace, args.batch_size)
    return root_key_moves.rotate(settings, store, _say, args.grace, args.batch_size)


def _status(store: Store) -> list[dict[str, Any]]:
    from strongroom.services.root_key import registry

    return [
        {
            "RootKeyId": e.key_id,
            "Provider": e.provider,
            "Module": e.module,
            "TokenLabel": e.token_label,
            "KeyLabel": e.key_label,
            "State": e.state,
        }
        for e in registry(store)
    ]


def _say(line: str) -> None:
    print(f"strongroom: {line}", file=sys.stderr, flush=True)
