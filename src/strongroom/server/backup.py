"""``strongroom admin backup``: a consistent snapshot of a data directory (and its database)
while servers keep serving it, in one file (``server/backup_format.py``).

Order: the database first (one consistent read: every write acknowledged before the backup
began is in it), then the data directory's files, then the audit directory. An event is
written before its request's reply and the database change before its event, so the audit
copy, taken last, holds the event of every change the database copy holds (and its intent
record, written before the change: ``audit/segments.py``; copied as the lines they are, and
skipped by the readers of the restored trail). A segment being written is copied up to its
last complete line.

Secrets: key material and access-key secrets stay wrapped exactly as the database holds
them. The only secrets in plaintext are files that are in plaintext in the data directory
already (the root key file, a SoftHSM2 token and its PIN, the credentials file, the --dev
TLS key), so the backup is as sensitive as the data directory. A root key in an HSM is
recorded as its reference only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import sqlite3
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy.exc import SQLAlchemyError

from strongroom.audit.segments import SUFFIX as SEGMENT_SUFFIX
from strongroom.server.backup_format import (
    AUDIT,
    DATA,
    DATABASE,
    FORMAT,
    MANIFEST,
    VERSION,
    BackupError,
    member_name,
)
from strongroom.server.settings import Settings
from strongroom.server.startup import shown_url
from strongroom.storage.snapshot import Snapshot, consistent_read

Progress = Callable[[str], None]
_CHUNK = 1 << 20
# Settings a restore decides for itself (where it restores to), kept out of the manifest's.
_WHERE = ("data_dir", "database_url", "audit_dir")


@dataclass(slots=True)
class _Staged:
    """What the staging directory holds so far, as the manifest lists it."""

    tables: list[dict[str, Any]]
    files: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    registry: list[dict[str, Any]]


def take(
    settings: Settings,
    out: Path,
    progress: Progress = lambda line: None,
    *,
    root_key_file: bool = True,
) -> dict[str, Any]:
    """Write the backup of ``settings``' data directory, database and audit directory to
    ``out`` (mode 0600; a new file: never over one that exists). Returns a summary.
    Without ``root_key_file`` the root key file stays out (the operator keeps it apart).
    BackupError (one line) when the source is missing or the file cannot be written;
    nothing is left behind then."""
    _check(settings, out)
    started = time.time()
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staged = _Staged([], [], [], [])
        backend, revision = _database(settings, staging, staged, progress)
        skip = {staging.resolve(), out.resolve(), out.with_name(out.name + ".partial").resolve()}
        if not root_key_file:
            skip.add(settings.root_key_path.resolve())
        _data_files(settings, staging, staged, skip, progress)
        _audit_files(settings.audit_path, staging, staged, progress)
        manifest = _manifest(settings, started, backend, revision, staged)
        size = _archive(out, staging, manifest, progress)
    except OSError as exc:  # a full disk, a file that cannot be read
        where = f" ({exc.filename})" if exc.filename else ""
        raise BackupError(
            f"cannot write the backup {out}: {exc.strerror or exc}{where}; nothing was written"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "File": str(out),
        "Bytes": size,
        "Revision": revision,
        "Tables": len(staged.tables),
        "Rows": sum(t["rows"] for t in staged.tables),
        "Files": len(staged.files),
        "AuditFiles": len(staged.audit),
        "Seconds": round(time.time() - started, 3),
        "RootKey": manifest["root_key"]["keep"],
    }


def _check(settings: Settings, out: Path) -> None:
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} exists: choose another file name (a backup never overwrites)")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK | os.X_OK):
        raise BackupError(f"cannot write {out}: {out.parent} is not a writable directory")
    if not settings.data_dir.is_dir():
        raise BackupError(
            f"no data directory at {settings.data_dir}: is --data-dir (or STRONGROOM_DATA_DIR) "
            "right?"
        )
    if settings.database_url is None and not settings.sqlite_path.is_file():
        raise BackupError(
            f"no database at {settings.sqlite_path}: is --data-dir right, or is the database "
            "elsewhere (--database-url)?"
        )


# -- the database ---------------------------------------------------------------------------


def _database(
    settings: Settings, staging: Path, staged: _Staged, progress: Progress
) -> tuple[str, str]:
    """Stage every table's rows from one consistent read; (backend, revision)."""
    url = settings.db_url
    try:
        with consistent_read(url) as snapshot:
            if snapshot.revision is None:
                raise BackupError(
                    f"the database at {shown_url(url)} has no Strongroom schema: is "
                    "--database-url (or --data-dir) right?"
                )
            for shape in snapshot.shapes():
                staged.tables.append(_table(snapshot, shape.name, staging, staged, progress))
            return snapshot.backend, snapshot.revision
    except (SQLAlchemyError, sqlite3.Error) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise BackupError(f"cannot read the database at {shown_url(url)}: {reason}") from None


def _table(
    snapshot: Snapshot, name: str, staging: Path, staged: _Staged, progress: Progress
) -> dict[str, Any]:
    shape = next(s for s in snapshot.shapes() if s.name == name)
    member = member_name(DATABASE, f"{name}.jsonl")
    digest = hashlib.sha256()
    rows = size = 0
    path = staging / member
    path.parent.mkdir(mode=0o700, exist_ok=True)
    with _private(path) as f:
        for values in snapshot.rows(name):
            line = orjson.dumps(values) + b"\n"
            f.write(line)
            digest.update(line)
            rows += 1
            size += len(line)
            if rows % 10_000 == 0:
                progress(f"database: {name}: {rows} rows")
            if name == "root_keys":
                staged.registry.append(dict(zip(shape.columns, values, strict=True)))
    progress(f"database: {name}: {rows} rows")
    return {
        "name": name,
        "columns": list(shape.columns),
        "binary": list(shape.binary),
        "boolean": list(shape.boolean),
        "rows": rows,
        "member": member,
        "size": size,
        "sha256": digest.hexdigest(),
    }


# -- files ----------------------------------------------------------------------------------


def _data_files(
    settings: Settings, staging: Path, staged: _Staged, skip: set[Path], progress: Progress
) -> None:
    """Every regular file of the data directory but the SQLite database (its rows are in
    the backup) and the locks beside it (``Store.exclusive``: a running server's), the
    audit directory (copied apart) and the backup being written."""
    data_dir = settings.data_dir.resolve()
    if settings.database_url is None:
        db = settings.sqlite_path.resolve()
        skip |= {db.with_name(db.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")}
        skip |= {lock.resolve() for lock in db.parent.glob(db.name + ".*.lock")}
    skip.add(settings.audit_path.resolve())
    for path in _walk(data_dir, skip):
        relative = path.relative_to(data_dir).as_posix()
        entry = _copy(path, staging / member_name(DATA, relative), relative, _whole)
        if entry is not None:
            staged.files.append({**entry, "member": member_name(DATA, relative)})
    progress(f"data directory: {len(staged.files)} files")


def _audit_files(directory: Path, staging: Path, staged: _Staged, progress: Progress) -> None:
    """Every file of the audit directory, whatever it holds; a segment up to its last
    complete event (the rest is being written, or zeros written ahead)."""
    if not directory.is_dir():
        return
    copied = 0
    root = directory.resolve()
    for path in _walk(root, set()):
        relative = path.relative_to(root).as_posix()
        how = _complete_events if path.name.endswith(SEGMENT_SUFFIX) else _whole
        entry = _copy(path, staging / member_name(AUDIT, relative), relative, how)
        if entry is not None:
            staged.audit.append({**entry, "member": member_name(AUDIT, relative)})
            copied += entry["size"]
            progress(f"audit: {len(staged.audit)} files, {copied >> 20} MiB")


def _walk(root: Path, skip: set[Path]) -> Iterator[Path]:
    """The regular files under ``root``, sorted, leaving out the paths (files or
    directories) in ``skip``. A link to a file counts as the file (a root key file linked
    from elsewhere is copied); a link to a directory is not followed."""
    for entry in sorted(root.iterdir()):
        if entry in skip or entry.resolve() in skip:
            continue
        try:
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                mode = entry.stat().st_mode
                if stat.S_ISDIR(mode):
                    continue
        except FileNotFoundError:  # gone meanwhile, or a dangling link
            continue
        if stat.S_ISDIR(mode):
            yield from _walk(entry, skip)
        elif stat.S_ISREG(mode):
            yield entry


Copier = Callable[[BinaryIO, BinaryIO], tuple[int, str]]


def _copy(source: Path, target: Path, relative: str, how: Copier) -> dict[str, Any] | None:
    """Copy ``source`` to ``target`` (mode 0600) with ``how``; its manifest entry, or None
    when it went meanwhile (an audit file retired while the backup ran)."""
    try:
        f = source.open("rb")
    except FileNotFoundError:
        return None
    with f:
        mode = os.fstat(f.fileno()).st_mode & 0o777
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with _private(target) as out:
            size, digest = how(f, out)
    return {"path": relative, "mode": mode, "size": size, "sha256": digest}


def _whole(source: BinaryIO, target: BinaryIO) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: source.read(_CHUNK), b""):
        target.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _complete_events(source: BinaryIO, target: BinaryIO) -> tuple[int, str]:
    """A segment's lines up to the first that is not complete: one without its newline,
    or with zero bytes (written ahead, or where the rest of a line being written goes)."""
    digest = hashlib.sha256()
    size = 0
    for raw in source:
        if raw[-1:] != b"\n" or b"\0" in raw:
            break
        target.write(raw)
        digest.update(raw)
        size += len(raw)
    return size, digest.hexdigest()


@contextmanager
def _private(path: Path) -> Iterator[BinaryIO]:
    """A new file at ``path``, mode 0600, synced and closed when the block ends."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


# -- the manifest and the archive -----------------------------------------------------------


def _manifest(
    settings: Settings, started: float, backend: str, revision: str, staged: _Staged
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "strongroom": _version(),
        "database": {"backend": backend, "revision": revision, "tables": staged.tables},
        "files": staged.files,
        "audit": staged.audit,
        "root_key": _root_key(settings, staged),
        "settings": _settings(settings),
    }


def _version() -> str:
    try:
        return importlib.metadata.version("strongroom")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _root_key(settings: Settings, staged: _Staged) -> dict[str, Any]:
    """Where the root key the database is wrapped under is, and what the operator must keep
    beside the backup to open it. A token key: its reference (module, token and key
    labels, the PIN's source), never the PIN."""
    paths = {entry["path"] for entry in staged.files}
    registry = [
        {
            k: entry.get(k)
            for k in ("key_id", "provider", "module", "token_label", "key_label", "state")
        }
        for entry in staged.registry
    ]
    active = next((e for e in registry if e["state"] == "active"), None)
    provider = active["provider"] if active else settings.root_key
    in_backup = "root.key" in paths
    if provider == "pkcs11" and active is not None:
        pin = (
            f"the environment variable {settings.pkcs11_pin_env}"
            if settings.pkcs11_pin_env
            else f"the file {settings.pkcs11_pin_file}"
            if settings.pkcs11_pin_file
            else "the pkcs11_pin_env or pkcs11_pin_file setting"
        )
        keep = (
            f"the root key is key {active['key_label']!r} in PKCS#11 token "
            f"{active['token_label']!r} of {active['module']}: the backup holds only that "
            f"reference. Keep the key in the HSM (and the HSM's own backup of it) and its "
            f"user PIN (servers read it from {pin}): without them nothing in this backup "
            "can be unwrapped"
        )
    elif provider == "softhsm":
        keep = (
            "the backup holds the SoftHSM2 token of the data directory (softhsm/), with the "
            "root key and its PIN: keep the backup as safe as the data directory"
        )
    elif in_backup:
        keep = (
            "the backup holds the root key file (root.key) every secret in it is wrapped "
            "under: keep the backup as safe as the data directory"
        )
    elif settings.root_key_path.exists():
        keep = (
            "the root key file is not in the backup (--without-root-key): keep root.key of "
            f"{settings.data_dir} apart, and copy it to the restored data directory (mode "
            "0600) before a server starts there"
        )
    else:
        keep = (
            f"no root key file at {settings.root_key_path}: keep the root key file this "
            "database is wrapped under with the backup, and copy it to the restored data "
            "directory as root.key"
        )
    return {"provider": provider, "file_in_backup": in_backup, "registry": registry, "keep": keep}


def _settings(settings: Settings) -> dict[str, Any]:
    """The settings, as TOML values, but where they point (a restore decides that) and
    with the database URL's password left out."""
    values: dict[str, Any] = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if field.name in _WHERE or value is None:
            continue
        values[field.name] = str(value) if isinstance(value, Path) else value
    values["database"] = shown_url(settings.db_url) if settings.database_url else "sqlite"
    return values


def _archive(out: Path, staging: Path, manifest: dict[str, Any], progress: Progress) -> int:
    """The tar.gz of the manifest, then each staged member in the manifest's order, written
    to OUT.partial and renamed to ``out`` once synced; its size."""
    partial = out.with_name(out.name + ".partial")
    names = [t["member"] for t in manifest["database"]["tables"]]
    names += [e["member"] for e in manifest["files"]] + [e["member"] for e in manifest["audit"]]
    body = json.dumps(manifest, indent=1).encode()
    try:
        with _private(partial) as f, tarfile.open(fileobj=f, mode="w:gz", compresslevel=6) as tar:
            _add(tar, MANIFEST, io.BytesIO(body), len(body))
            for i, name in enumerate(names, start=1):
                path = staging / name
                with path.open("rb") as member:
                    _add(tar, name, member, path.stat().st_size)
                if i % 100 == 0 or i == len(names):
                    progress(f"archive: {i} of {len(names)} members")
        os.rename(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out.stat().st_size


def _add(tar: tarfile.TarFile, name: str, data: BinaryIO, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    tar.addfile(info, data)
