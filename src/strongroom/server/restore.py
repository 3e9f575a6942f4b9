"""``strongroom admin restore``: a backup (``server/backup_format.py``) into a new data
directory and a new database, of either backend, which a server then serves.

Nothing is written before the whole file is checked: the target is refused unless the
data directory (and a separate audit directory) is missing or empty and the database has no
tables; then every member's size and SHA-256 are checked against the manifest. Only then
are the files written and the rows loaded: the schema of the backup's revision, its rows,
then the migrations since (storage/snapshot.py). If anything fails after that, what the
restore made is removed again: the data directory's contents, the tables it created.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from strongroom.domain.errors import StorageError
from strongroom.server.backup_format import (
    AUDIT,
    DATA,
    DATABASE,
    MANIFEST,
    BackupError,
    Member,
    members,
    parse_manifest,
)
from strongroom.server.settings import Settings
from strongroom.server.startup import check_data_dir, check_database_url, shown_url
from strongroom.server.wiring import open_store
from strongroom.storage.snapshot import (
    TableShape,
    drop_everything,
    head_revision,
    known_revision,
    load,
    table_names,
)
from strongroom.storage.sql import SqlStore

Progress = Callable[[str], None]
SETTINGS_FILE = "backup-settings.toml"
_CHUNK = 1 << 20
# What a damaged or truncated gzip/tar stream raises.
_DAMAGED = (tarfile.TarError, EOFError, zlib.error, OSError)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where the restore writes, and what was there before (to undo a failed restore)."""

    data_dir: Path
    data_dir_existed: bool
    audit_dir: Path
    audit_dir_existed: bool
    database_url: str | None  # None: SQLite in the data directory


def restore(
    settings: Settings, archive: Path, progress: Progress = lambda line: None
) -> dict[str, Any]:
    """Restore ``archive`` into ``settings``' data directory and database. Returns a summary.
    BackupError (one line) for a target that is not empty, a file that is not a backup or
    is damaged (nothing written then), a backup of a newer version; a failure while writing
    removes what was written."""
    target = _check_target(settings)
    manifest = _verified(archive, progress)
    revision = manifest["database"]["revision"]
    if not known_revision(revision):
        raise BackupError(
            f"cannot restore {archive}: its database is at revision {revision}, which this "
            f"version of Strongroom does not know (it knows up to {head_revision()}): restore "
            "it with the version that made it, or a newer one"
        )
    expected = members(manifest)
    rows = 0
    try:
        store = open_store(settings)
        assert isinstance(store, SqlStore)
        try:
            tables = _extract(archive, manifest, expected, settings, target, progress)
            counts: dict[str, int] = {}

            def noted(table: str, so_far: int) -> None:
                counts[table] = so_far
                progress(f"database: {table}: {so_far} rows")

            load(store.engine, revision, tables, noted)
            rows = sum(counts.values())
        finally:
            store.close()
        settings_file = _write_settings(settings.data_dir, manifest)
    except BaseException as exc:
        _undo(target)
        if isinstance(exc, (SQLAlchemyError, StorageError)):
            cause = exc if isinstance(exc, SQLAlchemyError) else exc.__cause__
            reason = str(getattr(cause, "orig", None) or cause or exc).strip().splitlines()[0]
            raise BackupError(
                f"cannot restore {archive}: the database refused it: {reason}; nothing was restored"
            ) from None
        if isinstance(exc, ValueError):  # a row or member that does not match the manifest
            raise BackupError(f"cannot restore {archive}: {exc}; nothing was restored") from None
        if isinstance(exc, OSError) and exc.filename is not None:
            raise BackupError(
                f"cannot restore {archive}: cannot write {exc.filename}: "
                f"{exc.strerror or exc}; nothing was restored"
            ) from None
        if isinstance(exc, _DAMAGED):
            raise BackupError(
                f"cannot restore {archive}: it is not a readable backup ({exc}); nothing was "
                "restored"
            ) from None
        raise
    database = shown_url(settings.database_url) if settings.database_url else "sqlite"
    serve = f"strongroom serve --config {settings_file} --data-dir {settings.data_dir}"
    if settings.database_url:
        serve += f" --database-url {shown_url(settings.database_url)}"
    return {
        "DataDir": str(settings.data_dir),
        "Database": database,
        "BackupCreated": manifest.get("created"),
        "BackupRevision": revision,
        "Revision": head_revision(),
        "Tables": len(manifest["database"]["tables"]),
        "Rows": rows,
        "Files": len(manifest["files"]),
        "AuditFiles": len(manifest["audit"]),
        "RootKey": manifest.get("root_key", {}).get("keep"),
        "Settings": str(settings_file),
        "Serve": serve,
    }


# -- before anything is written -------------------------------------------------------------


def _check_target(settings: Settings) -> _Target:
    """The target, refused (BackupError, one line) unless the data directory and the audit
    directory are missing or empty and the database has no tables."""
    check_data_dir(settings.data_dir)
    for name, directory in (
        ("data directory", settings.data_dir),
        ("audit directory", settings.audit_path),
    ):
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise BackupError(
                f"the {name} {directory} is not empty: restore into a new (or empty) "
                "directory; a restore never writes over data"
            )
    url = settings.database_url
    if url is not None:
        check_database_url(url)
        try:
            store = SqlStore(url)
            try:
                found = table_names(store.engine)
            finally:
                store.close()
        except (SQLAlchemyError, StorageError) as exc:
            cause = exc if isinstance(exc, SQLAlchemyError) else exc.__cause__
            reason = str(getattr(cause, "orig", None) or cause or exc).strip().splitlines()[0]
            raise BackupError(
                f"cannot open the database at {shown_url(url)}: {reason}; create it "
                "(createdb) or fix --database-url"
            ) from None
        if found:
            raise BackupError(
                f"the database at {shown_url(url)} is not empty (it has {len(found)} tables, "
                f"e.g. {found[0]}): restore into a new, empty database"
            )
    return _Target(
        settings.data_dir,
        settings.data_dir.exists(),
        settings.audit_path,
        settings.audit_path.exists(),
        url,
    )


def _verified(archive: Path, progress: Progress) -> dict[str, Any]:
    """The manifest, once every member of ``archive`` matched it (sizes and SHA-256), with
    none missing and none more; BackupError naming what does not."""
    try:
        with _opened(archive) as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isreg():
                raise BackupError(f"{MANIFEST} is not its first member")
            manifest = parse_manifest(_read(tar, first))
            expected = members(manifest)
            seen: set[str] = set()
            for info in tar:  # the manifest again first (a TarFile keeps what it read)
                if info is first:
                    continue
                member = expected.get(info.name)
                if member is None or info.name in seen or not info.isreg():
                    raise BackupError(f"member {info.name} is not in its manifest")
                seen.add(info.name)
                size, digest = _digest(tar, info)
                if size != member.size or digest != member.sha256:
                    raise BackupError(f"member {info.name} does not match its checksum")
                if len(seen) % 100 == 0:
                    progress(f"checked {len(seen)} of {len(expected)} members")
            missing = sorted(set(expected) - seen)
            if missing:
                raise BackupError(f"member {missing[0]} is missing (the file is cut short?)")
    except BackupError as exc:
        raise BackupError(f"cannot restore {archive}: {exc}; nothing was restored") from None
    except _DAMAGED as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BackupError(
            f"cannot restore {archive}: it is not a readable backup "
            f"({reason or type(exc).__name__}); nothing was restored"
        ) from None
    progress(f"checked {len(expected)} members")
    return manifest


@contextlib.contextmanager
def _opened(archive: Path) -> Iterator[tarfile.TarFile]:
    """The archive's tar stream, read through ``gzip``, which checks the CRC-32 and length
    of the whole stream at its end (tarfile's own gzip reading does not): a flipped bit in
    a part no member's checksum covers (tar headers' padding, the end-of-archive blocks)
    is caught too. The rest of the stream is read when the block ends, for that check."""
    with gzip.open(archive, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        yield tar
        while stream.read(_CHUNK):
            pass


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(info)
    if f is None:
        raise BackupError(f"member {info.name} is not a file")
    return f.read()


def _digest(tar: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[int, str]:
    f = tar.extractfile(info)
    if f is None:
        raise BackupError(f"member {info.name} is not a file")
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: f.read(_CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


# -- writing --------------------------------------------------------------------------------


def _extract(
    archive: Path,
    manifest: dict[str, Any],
    expected: dict[str, Member],
    settings: Settings,
    target: _Target,
    progress: Progress,
) -> Iterator[tuple[TableShape, Iterator[list[Any]]]]:
    """Read ``archive`` again: yield each table's shape and rows (for ``load``), and write
    each file of the data and audit directories as it comes, checked again as written."""
    shapes = {
        t["name"]: (
            TableShape(t["name"], tuple(t["columns"]), tuple(t["binary"]), tuple(t["boolean"])),
            t["rows"],
        )
        for t in manifest["database"]["tables"]
    }
    written = 0
    with _opened(archive) as tar:
        for info in tar:
            if info.name == MANIFEST:
                continue
            member = expected[info.name]
            f = tar.extractfile(info)
            if f is None:
                raise BackupError(f"member {info.name} is not a file")
            kind = info.name.split("/", 1)[0]
            if kind == DATABASE:
                shape, count = shapes[member.path]
                yield shape, _rows(f, shape.name, count)
                continue
            base = target.data_dir if kind == DATA else target.audit_dir
            _write(f, base / member.path, member)
            written += 1
            if kind == AUDIT or written % 100 == 0:
                progress(f"files: {written}")


def _rows(f: IO[bytes], table: str, count: int) -> Iterator[list[Any]]:
    seen = 0
    for line in f:
        values = json.loads(line)
        if not isinstance(values, list):
            raise BackupError(f"table {table}: a row is not a list of values")
        seen += 1
        yield values
    if seen != count:
        raise BackupError(f"table {table}: {seen} rows, but its manifest says {count}")


def _write(source: IO[bytes], path: Path, member: Member) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, member.mode or 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != member.sha256:
        raise BackupError(f"member {member.member} changed since it was checked")


def _write_settings(data_dir: Path, manifest: dict[str, Any]) -> Path:
    """The backup's settings as a TOML file for ``strongroom serve --config``."""
    settings = dict(manifest.get("settings") or {})
    database = settings.pop("database", None)
    lines = [
        f"# The settings of the server that was backed up on {manifest.get('created')}",
        f"# (database: {database}); where the data is comes from --data-dir and",
        "# --database-url. Start with: strongroom serve --config THIS_FILE --data-dir DIR",
    ]
    for name, value in sorted(settings.items()):
        if isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{name} = {value!r}")
        elif isinstance(value, str):
            lines.append(f"{name} = {json.dumps(value)}")
    path = data_dir / SETTINGS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _undo(target: _Target) -> None:
    """Remove what a failed restore wrote: the directories' contents (the directories too
    when the restore made them) and the database's tables."""
    for directory, existed in (
        (target.data_dir, target.data_dir_existed),
        (target.audit_dir, target.audit_dir_existed),
    ):
        if not directory.exists():
            continue
        if not existed:
            shutil.rmtree(directory, ignore_errors=True)
            continue
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    if target.database_url is not None:
        with _quietly():
            store = SqlStore(target.database_url)
            try:
                drop_everything(store.engine)
            finally:
                store.close()


def _quietly() -> contextlib.suppress:
    """The restore's own error is the one to report, not one of its undoing."""
    return contextlib.suppress(SQLAlchemyError, StorageError, OSError)
