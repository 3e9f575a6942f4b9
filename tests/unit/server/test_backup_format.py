"""The backup manifest: what a restore relies on is checked before anything is written, and
no path in it may lead outside the directory it restores into."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from strongroom.server.backup_format import BackupError, checked_path, members, parse_manifest

pytestmark = pytest.mark.unit

SHA = "0" * 64
MANIFEST: dict[str, Any] = {
    "format": "strongroom-backup",
    "version": 1,
    "database": {
        "backend": "sqlite",
        "revision": "0013",
        "tables": [
            {
                "name": "keys",
                "columns": ["arn", "state"],
                "binary": [],
                "boolean": [],
                "rows": 2,
                "member": "database/keys.jsonl",
                "size": 10,
                "sha256": SHA,
            }
        ],
    },
    "files": [
        {"path": "root.key", "member": "data/root.key", "mode": 0o600, "size": 32, "sha256": SHA}
    ],
    "audit": [{"path": "a.log", "member": "audit/a.log", "mode": 0o600, "size": 1, "sha256": SHA}],
}


def _parsed(manifest: dict[str, Any]) -> dict[str, Any]:
    return parse_manifest(json.dumps(manifest).encode())


def test_a_well_formed_manifest_lists_its_members() -> None:
    found = members(_parsed(MANIFEST))
    assert set(found) == {"database/keys.jsonl", "data/root.key", "audit/a.log"}
    assert found["data/root.key"].mode == 0o600 and found["data/root.key"].size == 32


@pytest.mark.parametrize(
    "path", ["../etc/passwd", "/etc/passwd", "a/../../b", "", "a//b", "./a", "a/."]
)
def test_a_path_that_leaves_the_directory_is_refused(path: str) -> None:
    with pytest.raises(BackupError, match="not a path"):
        checked_path(path, "files")
    manifest = copy.deepcopy(MANIFEST)
    manifest["files"][0]["path"] = path
    with pytest.raises(BackupError):
        _parsed(manifest)


def test_a_member_name_that_is_not_its_path_is_refused() -> None:
    manifest = copy.deepcopy(MANIFEST)
    manifest["files"][0]["member"] = "data/other"
    with pytest.raises(BackupError, match=r"member is not data/root\.key"):
        members(_parsed(manifest))
    manifest = copy.deepcopy(MANIFEST)
    manifest["database"]["tables"][0]["member"] = "data/root.key"
    with pytest.raises(BackupError, match=r"member is not database/keys\.jsonl"):
        members(_parsed(manifest))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(format="zip"), "not a Strongroom backup"),
        (lambda m: m.update(version=2), "format version 2"),
        (lambda m: m["database"].pop("revision"), "database.revision"),
        (lambda m: m["database"]["tables"][0].update(name="keys; drop"), "table name"),
        (lambda m: m["database"]["tables"][0].update(rows="2"), "rows"),
        (lambda m: m["audit"][0].update(sha256="abc"), "sha256"),
        (lambda m: m["files"][0].update(mode=True), "mode"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_field(change: Any, message: str) -> None:
    manifest = copy.deepcopy(MANIFEST)
    change(manifest)
    with pytest.raises(BackupError, match=message):
        _parsed(manifest)


def test_a_manifest_that_is_not_json_is_refused() -> None:
    with pytest.raises(BackupError, match="not JSON"):
        parse_manifest(b"\x1f\x8b not json")
