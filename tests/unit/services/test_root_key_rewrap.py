"""services.root_key.rewrap on a real SQLite database: every kind of wrapped row moves
under the ring's active key in batches, compare-and-set, and a row another process wrote
meanwhile keeps that process's value."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.crypto.wrap import WRAP_V2, key_id, material_aad
from strongroom.domain.errors import KeyStoreError
from strongroom.keystores.filekey import FileRootKey
from strongroom.keystores.ring import RootKeyRing
from strongroom.services.identities import secret_aad
from strongroom.services.imports import token_aad
from strongroom.services.root_key import remaining, rewrap
from strongroom.services.store_tokens import password_aad
from strongroom.storage.sql import SqlStore

from .._keys import SoftwareV2Key

pytestmark = pytest.mark.unit

ARN = "arn:aws:kms:us-east-1:111122223333:key/{}"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[SqlStore, Path]]:
    path = tmp_path / "strongroom.db"
    store = SqlStore(f"sqlite:///{path}")
    store.migrate()
    yield store, path
    store.close()


def _fill(path: Path, old: FileRootKey, materials: int) -> dict[tuple[str, object], bytes]:
    """Rows of every kind wrapped under ``old`` (straight into the tables: the foreign keys
    are not what this test is about); returns each secret by (table, primary key)."""
    secrets: dict[tuple[str, object], bytes] = {}
    conn = sqlite3.connect(path)
    with conn:
        for n in range(materials):
            arn, version = ARN.format(n // 3), n % 3 + 1
            secret = os.urandom(32)
            secrets["material", (arn, version)] = secret
            conn.execute(
                "INSERT INTO key_materials (key_arn, version, wrapped, created) VALUES (?,?,?,0)",
                (arn, version, old.wrap(secret, material_aad(arn, version))),
            )
        for table in ("access_keys", "role_sessions"):
            for n in range(3):
                akid, secret = f"AKIA{table[:4].upper()}{n}", os.urandom(20)
                secrets[table, akid] = secret
                wrapped = old.wrap(secret, secret_aad(akid))
                if table == "access_keys":
                    conn.execute(
                        "INSERT INTO access_keys (access_key_id, principal_arn, wrapped_secret,"
                        " status, created) VALUES (?, 'p', ?, 'Active', 0)",
                        (akid, wrapped),
                    )
                else:
                    conn.execute(
                        "INSERT INTO role_sessions (access_key_id, role_arn, session_name,"
                        " wrapped_secret, token_sha256, created, expiration)"
                        " VALUES (?, 'r', 's', ?, x'00', 0, 0)",
                        (akid, wrapped),
                    )
        digest, arn = "d" * 64, ARN.format("import")
        secrets["import_tokens", digest] = secret = os.urandom(64)
        conn.execute(
            "INSERT INTO import_tokens (token_digest, key_arn, wrapping_algorithm,"
            " wrapping_key_spec, wrapped_private_key, valid_to, created)"
            " VALUES (?, ?, 'a', 's', ?, 0, 0)",
            (digest, arn, old.wrap(secret, token_aad(digest, arn))),
        )
        store_id = "cks-0123456789abcdef0"
        secrets["custom_key_stores", store_id] = secret = b"kmsuser-password"
        conn.execute(
            "INSERT INTO custom_key_stores (store_id, account_id, region, name, store_type,"
            " cluster_id, trust_anchor, wrapped_password, connection_state, creation_date)"
            " VALUES (?, '111122223333', 'us-east-1', 'n', 'AWS_CLOUDHSM', 'cluster-x', 'pem',"
            " ?, 'DISCONNECTED', 0)",
            (store_id, old.wrap(secret, password_aad(store_id))),
        )
    conn.close()
    return secrets


def _stored(path: Path) -> dict[tuple[str, object], tuple[bytes, bytes]]:
    """Each row's wrapped value and AAD."""
    conn = sqlite3.connect(path)
    rows: dict[tuple[str, object], tuple[bytes, bytes]] = {}
    for arn, version, wrapped in conn.execute(
        "SELECT key_arn, version, wrapped FROM key_materials"
    ):
        rows["material", (arn, version)] = (wrapped, material_aad(arn, version))
    for table in ("access_keys", "role_sessions"):
        for akid, wrapped in conn.execute(f"SELECT access_key_id, wrapped_secret FROM {table}"):
            rows[table, akid] = (wrapped, secret_aad(akid))
    for digest, arn, wrapped in conn.execute(
        "SELECT token_digest, key_arn, wrapped_private_key FROM import_tokens"
    ):
        rows["import_tokens", digest] = (wrapped, token_aad(digest, arn))
    for store_id, wrapped in conn.execute(
        "SELECT store_id, wrapped_password FROM custom_key_stores"
    ):
        rows["custom_key_stores", store_id] = (wrapped, password_aad(store_id))
    conn.close()
    return rows


def test_every_kind_of_row_moves_in_batches(db: tuple[SqlStore, Path], tmp_path: Path) -> None:
    store, path = db
    old, new = FileRootKey.create(tmp_path / "root.key"), SoftwareV2Key()
    secrets = _fill(path, old, materials=25)
    seen: list[tuple[str, int, int]] = []
    done = rewrap(
        store,
        RootKeyRing(new, [old], file_key=old),
        lambda kind, n, total: seen.append((kind, n, total)),
        batch=4,
        pause=0,
    )
    assert done == 25 + 3 + 3 + 1 + 1
    assert not any(remaining(store, new).values())
    stored = _stored(path)
    assert stored.keys() == secrets.keys()
    for name, (wrapped, aad) in stored.items():
        assert wrapped[:9] == bytes((WRAP_V2,)) + key_id(new.check_value())
        assert new.unwrap(wrapped, aad) == secrets[name]
    materials = [(n, total) for kind, n, total in seen if kind == "material"]
    assert materials == [(4, 25), (8, 25), (12, 25), (16, 25), (20, 25), (24, 25), (25, 25)]
    # Run again: nothing left to do.
    assert rewrap(store, RootKeyRing(new, [old], file_key=old), lambda *a: None, pause=0) == 0


def test_a_row_written_meanwhile_keeps_the_writers_value(
    db: tuple[SqlStore, Path], tmp_path: Path
) -> None:
    store, path = db
    old, new = FileRootKey.create(tmp_path / "root.key"), SoftwareV2Key()
    _fill(path, old, materials=3)
    arn = ARN.format(0)
    theirs = new.wrap(b"written by a server meanwhile", material_aad(arn, 1))

    class Racing(FileRootKey):
        """The old key, and a server that rewrites one row while the batch is in hand."""

        def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
            secret = super().unwrap(wrapped, aad)
            if aad == material_aad(arn, 1):
                with sqlite3.connect(path) as conn:
                    conn.execute(
                        "UPDATE key_materials SET wrapped = ? WHERE key_arn = ? AND version = 1",
                        (theirs, arn),
                    )
            return secret

    racing = Racing(tmp_path / "root.key")
    done = rewrap(store, RootKeyRing(new, [racing], file_key=racing), lambda *a: None, pause=0)
    assert done == 3 + 3 + 3 + 1 + 1 - 1  # the raced row was not replaced
    assert _stored(path)["material", (arn, 1)][0] == theirs
    assert not any(remaining(store, new).values())


def test_a_row_that_does_not_unwrap_stops_the_move_naming_it(
    db: tuple[SqlStore, Path], tmp_path: Path
) -> None:
    store, path = db
    old, new = FileRootKey.create(tmp_path / "root.key"), SoftwareV2Key()
    _fill(path, old, materials=1)
    other = FileRootKey.create(tmp_path / "other.key")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE access_keys SET wrapped_secret = ? WHERE access_key_id = 'AKIAACCE1'",
            (other.wrap(b"x", secret_aad("AKIAACCE1")),),
        )
    with pytest.raises(KeyStoreError, match=r"access_key \('AKIAACCE1',\): wrapped value"):
        rewrap(store, RootKeyRing(new, [old], file_key=old), lambda *a: None, pause=0)
