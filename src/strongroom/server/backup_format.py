"""The backup file of ``strongroom admin backup``: one gzip-compressed tar archive.

Members, in this order::

    manifest.json             what follows and how to check it (below)
    database/<table>.jsonl    the rows of one table: a JSON array of values per line, in the
                              manifest's column order (storage/snapshot.py: binary values
                              base64, material wrapped exactly as stored)
    data/<path>               a file of the data directory (the root key file, the
                              credentials and config files, a SoftHSM2 token directory, the
                              --dev TLS files, ...), by its path in the directory
    audit/<path>              a file of the audit directory: segments up to their last
                              complete event, and whatever else is there (digests, ...)

The manifest (JSON object)::

    format, version     "strongroom-backup", 1
    created             ISO 8601 UTC time the backup began
    strongroom          the version that made it
    database            backend ("sqlite" or "postgresql"), revision (Alembic), tables: a
                        list of {name, columns, binary, boolean, rows, member, size, sha256}
                        in the order the rows load (foreign keys first)
    files, audit        lists of {path, member, mode, size, sha256}
    root_key            provider, whether the root key file is in the backup, the registry
                        of root keys (references, never a secret), and what the operator
                        must keep beside the backup
    settings            the settings the backup was taken with (no secrets: a database
                        URL is shown without its password)

Every member's SHA-256 and size are in the manifest, which comes first, so a restore checks
the whole file before it writes anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

FORMAT = "strongroom-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATABASE, DATA, AUDIT = "database", "data", "audit"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TABLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class BackupError(ValueError):
    """A backup or restore that cannot go on; one line: what is wrong, what to do."""


@dataclass(frozen=True, slots=True)
class Member:
    """One member the manifest lists: where it goes (its path under the data or audit
    directory, or a table name) and how to check it."""

    member: str
    path: str
    size: int
    sha256: str
    mode: int = 0o600


def member_name(kind: str, path: str) -> str:
    return f"{kind}/{path}"


def checked_path(path: object, where: str) -> str:
    """``path`` if it is a relative POSIX path that stays inside its directory; BackupError
    otherwise (an archive must never write outside the directory it restores into)."""
    if not isinstance(path, str) or not path:
        raise BackupError(f"{where}: not a path")
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in path.split("/")):
        raise BackupError(f"{where}: {path!r} is not a path inside the directory")
    return str(pure)


def parse_manifest(data: bytes) -> dict[str, Any]:
    """The manifest, checked for the fields a restore relies on; BackupError naming the
    first that is missing or malformed."""
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BackupError("its manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("it is not a Strongroom backup (no strongroom-backup manifest)")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"its format version {manifest.get('version')!r} is not {VERSION}: it was made "
            "by another version of Strongroom"
        )
    database = _field(manifest, "database", dict)
    _field(database, "revision", str, "database.")
    for table in _field(database, "tables", list, "database."):
        if not isinstance(table, dict) or not _TABLE.fullmatch(str(table.get("name"))):
            raise BackupError("its manifest names a table that is not a table name")
        for name in ("columns", "binary", "boolean"):
            value = _field(table, name, list, f"table {table['name']}: ")
            if not all(isinstance(c, str) for c in value):
                raise BackupError(f"its manifest's table {table['name']}: {name} is malformed")
        _field(table, "rows", int, f"table {table['name']}: ")
        _checked_member(table, f"table {table['name']}")
    for kind in ("files", "audit"):
        for entry in _field(manifest, kind, list):
            if not isinstance(entry, dict):
                raise BackupError(f"its manifest's {kind} list is malformed")
            checked_path(entry.get("path"), f"its manifest's {kind}")
            _field(entry, "mode", int, f"{kind} {entry['path']}: ")
            _checked_member(entry, f"{kind} {entry['path']}")
    return manifest


def members(manifest: dict[str, Any]) -> dict[str, Member]:
    """Every member the (parsed) manifest lists, by member name."""
    found: dict[str, Member] = {}
    for table in manifest["database"]["tables"]:
        expected = member_name(DATABASE, f"{table['name']}.jsonl")
        if table["member"] != expected:
            raise BackupError(f"its manifest's table {table['name']}: member is not {expected}")
        found[expected] = Member(expected, table["name"], table["size"], table["sha256"])
    for kind, prefix in (("files", DATA), ("audit", AUDIT)):
        for entry in manifest[kind]:
            expected = member_name(prefix, entry["path"])
            if entry["member"] != expected:
                raise BackupError(
                    f"its manifest's {kind} {entry['path']}: member is not {expected}"
                )
            found[expected] = Member(
                expected, entry["path"], entry["size"], entry["sha256"], entry["mode"] & 0o777
            )
    return found


def _checked_member(entry: dict[str, Any], where: str) -> None:
    _field(entry, "member", str, f"{where}: ")
    _field(entry, "size", int, f"{where}: ")
    if not _SHA256.fullmatch(str(entry.get("sha256"))):
        raise BackupError(f"its manifest's {where}: sha256 is not a SHA-256 in hex")


def _field(entry: dict[str, Any], name: str, kind: type, where: str = "") -> Any:
    value = entry.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BackupError(f"its manifest's {where}{name} is missing or malformed")
    return value
