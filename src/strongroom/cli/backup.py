"""``strongroom admin backup`` and ``admin restore``: a consistent snapshot of a data
directory and its database in one file while servers serve it, and that file restored into
a new data directory and database (README "Backup and restore")."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from strongroom.cli.common import add_storage_options, settings_from


def register(admin: Any) -> None:
    """Add ``backup`` and ``restore`` to the ``admin`` subcommands."""
    b = admin.add_parser(
        "backup",
        help="write a consistent snapshot of the data directory and database to one file",
        description="Write a consistent snapshot of the data directory, its database (SQLite "
        "or PostgreSQL), the root key configuration and the audit directory to FILE (tar.gz "
        "with a manifest of checksums), while servers keep serving. Key material stays "
        "wrapped; the file is as sensitive as the data directory (it holds the root key file "
        "when there is one). Give the same --config/--data-dir/--database-url as the server.",
    )
    b.add_argument("file", type=Path, metavar="FILE", help="the backup file to write (new)")
    b.add_argument(
        "--without-root-key",
        action="store_true",
        help="leave the root key file (DATA_DIR/root.key) out, to keep it apart from the "
        "backups; copy it into the restored data directory before starting a server there",
    )
    r = admin.add_parser(
        "restore",
        help="restore a backup into a new data directory and database",
        description="Restore FILE into a new (or empty) data directory and, with "
        "--database-url, a new (empty) database, of either backend. The whole file is checked "
        "against its manifest first; an older backup's database is migrated to this version.",
    )
    r.add_argument("file", type=Path, metavar="FILE", help="the backup file")
    for p in (b, r):
        add_storage_options(p)
        p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from strongroom.server import backup, restore

    settings = settings_from(args)
    progress = _Progress(sys.stderr, args.admin_command)
    started = datetime.now(UTC)
    try:
        if args.admin_command == "backup":
            result = backup.take(
                settings, args.file, progress, root_key_file=not args.without_root_key
            )
        else:
            result = restore.restore(settings, args.file, progress)
    finally:
        progress.done()
    if args.admin_command == "restore":
        _record_restore(args, result, started)
    print(json.dumps(result, indent=2))
    return 0


def _record_restore(args: argparse.Namespace, result: dict[str, Any], started: datetime) -> None:
    """The restore's event, in the trail it restored (``cli/admin_trail.py``), its digest
    signed with the restored signing key when the restored root key opens (as the settings
    the restore wrote and the command line name it); without a digest otherwise (a backup
    taken ``--without-root-key``, whose root key file is not copied back yet)."""
    from strongroom.cli.admin_events import EVENTS
    from strongroom.cli.admin_trail import record_made
    from strongroom.domain.errors import KeyStoreError
    from strongroom.server.wiring import open_root_key, open_store

    restored = settings_from(
        argparse.Namespace(**{**vars(args), "config": Path(result["Settings"])})
    )
    root_key = None
    try:
        store = open_store(restored)
        try:
            root_key = open_root_key(restored, store)
        finally:
            store.close()
    except (KeyStoreError, ValueError, OSError) as exc:
        print(
            f"strongroom: restore: the root key does not open yet ({exc}): the restore's "
            "audit event is written without a signed digest",
            file=sys.stderr,
        )
    record_made(restored, root_key, args, EVENTS["restore"], result, started)


class _Progress:
    """One status line rewritten in place on a terminal (at most once an ``interval``);
    nothing when stderr is not a terminal."""

    def __init__(self, stream: TextIO, what: str, interval: float = 0.1) -> None:
        self._stream = stream
        self._what = what
        self._interval = interval
        self._shown = False
        self._last: float | None = None  # when the line was last shown
        self._on = stream.isatty()

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if not self._on or (self._last is not None and now - self._last < self._interval):
            return
        self._last = now
        self._stream.write(f"\r\033[Kstrongroom: {self._what}: {line}")
        self._stream.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            self._stream.write("\r\033[K")
            self._stream.flush()
