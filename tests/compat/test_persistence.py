"""What a server stores survives a restart, failed requests store nothing, and the database
never holds key material or secrets in the clear."""

from __future__ import annotations

import base64
import signal
import sqlite3
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import (
    start_server,
    stop_server,
)
from strongroom.audit.signing import load_signer
from strongroom.crypto.wrap import material_aad
from strongroom.keystores.filekey import FileRootKey
from strongroom.storage.schema import key_materials

from ._support import assert_kms_error, stored_files, unique_alias

pytestmark = pytest.mark.compat

DB_NAME = "strongroom.db"


def _all(kms: Any, operation: str, items: str, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        page = getattr(kms, operation)(**kwargs)
        out += page[items]
        if not page["Truncated"]:
            return out
        kwargs["Marker"] = page["NextMarker"]


def _snapshot(kms: Any) -> dict[str, Any]:
    """Everything the API shows about the caller's keys in the client's region."""
    keys = _all(kms, "list_keys", "Keys")
    return {
        "keys": keys,
        "aliases": _all(kms, "list_aliases", "Aliases"),
        "metadata": {k["KeyId"]: kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in keys},
        "tags": {
            k["KeyId"]: _all(kms, "list_resource_tags", "Tags", KeyId=k["KeyId"]) for k in keys
        },
    }


def _stop_with_sigterm(server: Any) -> int:
    """SIGTERM the server; it must shut down gracefully within a few seconds. Returns the
    exit status (negative: killed by that signal)."""
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=8)
    except Exception:
        stop_server(server)
        raise
    log = server.log_path.read_text()
    assert "Application shutdown complete" in log, log
    return int(code)


def test_keys_aliases_tags_and_ciphertext_survive_a_restart(
    tmp_path: Path, database_url: str | None
) -> None:
    data = tmp_path / "data"
    first = start_server(data, database_url)
    try:
        kms = first.client()
        eu = first.client(region="eu-west-1")
        main = kms.create_key(
            Description="persisted ✓", Tags=[{"TagKey": "team", "TagValue": "vault"}]
        )["KeyMetadata"]
        alias = unique_alias("persist")
        kms.create_alias(AliasName=alias, TargetKeyId=main["KeyId"])
        disabled = kms.create_key(Description="disabled")["KeyMetadata"]
        disabled_blob = kms.encrypt(KeyId=disabled["KeyId"], Plaintext=b"later")["CiphertextBlob"]
        kms.disable_key(KeyId=disabled["KeyId"])
        doomed = kms.create_key(Description="doomed")["KeyMetadata"]
        kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=9)
        kms.update_key_description(KeyId=main["KeyId"], Description="persisted, renamed ✓")
        eu_key = eu.create_key(Description="eu")["KeyMetadata"]
        eu_blob = eu.encrypt(KeyId=eu_key["KeyId"], Plaintext=b"eu data")["CiphertextBlob"]
        blob = kms.encrypt(
            KeyId=alias, Plaintext=b"survives restarts", EncryptionContext={"a": "b"}
        )["CiphertextBlob"]
        data_key = kms.generate_data_key(KeyId=main["KeyId"], KeySpec="AES_256")
        before, before_eu = _snapshot(kms), _snapshot(eu)
    finally:
        _stop_with_sigterm(first)

    second = start_server(data, database_url)
    try:
        assert (second.access_key_id, second.secret_access_key) == (
            first.access_key_id,
            first.secret_access_key,
        )
        kms = second.client()
        eu = second.client(region="eu-west-1")
        assert _snapshot(kms) == before
        assert _snapshot(eu) == before_eu
        assert before["metadata"][doomed["KeyId"]]["KeyState"] == "PendingDeletion"
        assert kms.describe_key(KeyId=alias)["KeyMetadata"]["Description"] == "persisted, renamed ✓"
        out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
        assert out["Plaintext"] == b"survives restarts" and out["KeyId"] == main["Arn"]
        assert (
            kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"]
            == data_key["Plaintext"]
        )
        assert eu.decrypt(CiphertextBlob=eu_blob)["Plaintext"] == b"eu data"
        assert_kms_error("DisabledException", kms.decrypt, CiphertextBlob=disabled_blob)
        kms.enable_key(KeyId=disabled["KeyId"])
        assert kms.decrypt(CiphertextBlob=disabled_blob)["Plaintext"] == b"later"
        kms.cancel_key_deletion(KeyId=doomed["KeyId"])
        assert kms.describe_key(KeyId=doomed["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    finally:
        _stop_with_sigterm(second)


def test_sigterm_stops_the_server_with_exit_code_0(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    server.client().list_keys()
    started = time.monotonic()
    code = _stop_with_sigterm(server)
    assert time.monotonic() - started < 8
    assert code == 0


# -- a server of this module's own (SQLite) ---------------------------------------------


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(tmp_path_factory.mktemp("persistence") / "data")
    yield server
    stop_server(server)


def _rows(server: Any, table: str) -> int:
    with sqlite3.connect(f"file:{server.data_dir / DB_NAME}?mode=ro", uri=True) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_failed_operations_change_nothing(own: Any) -> None:
    kms = own.client()
    key = kms.create_key(Tags=[{"TagKey": "a", "TagValue": "1"}])["KeyMetadata"]
    alias = unique_alias("taken")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    other = kms.create_key()["KeyMetadata"]
    before = _snapshot(kms)
    rows = {t: _rows(own, t) for t in ("keys", "key_materials", "aliases", "tags")}

    assert_kms_error(
        "AlreadyExistsException", kms.create_alias, AliasName=alias, TargetKeyId=other["KeyId"]
    )
    for tags in (
        [{"TagKey": "aws:x", "TagValue": "1"}],
        [{"TagKey": "d", "TagValue": "1"}, {"TagKey": "d", "TagValue": "2"}],
        [{"TagKey": f"t{i}", "TagValue": "1"} for i in range(51)],
    ):
        assert_kms_error("TagException", kms.create_key, Description="must not exist", Tags=tags)
    assert_kms_error("MalformedPolicyDocumentException", kms.create_key, Policy="{")
    assert_kms_error(
        "TagException",
        kms.tag_resource,
        KeyId=key["KeyId"],
        Tags=[{"TagKey": "b", "TagValue": "1"}, {"TagKey": "aws:c", "TagValue": "1"}],
    )
    assert_kms_error(
        "TagException",
        kms.tag_resource,
        KeyId=key["KeyId"],
        Tags=[{"TagKey": f"n{i}", "TagValue": "1"} for i in range(50)],
    )
    assert_kms_error(
        "NotFoundException",
        kms.update_alias,
        AliasName=alias,
        TargetKeyId="11111111-2222-3333-4444-555555555555",
    )
    assert_kms_error(
        "NotAuthorizedException",
        kms.create_alias,
        AliasName="alias/aws/x",
        TargetKeyId=key["KeyId"],
    )
    assert_kms_error("KMSInvalidStateException", kms.cancel_key_deletion, KeyId=key["KeyId"])

    assert _snapshot(kms) == before
    assert {t: _rows(own, t) for t in rows} == rows


def _decrypt_with_material(material: bytes, blob: bytes, context: dict[str, str]) -> bytes:
    """Open a blob by its documented layout (strongroom/crypto/blob.py and context.py)."""
    n = blob[13]
    head_end = 14 + n + 4 + 12
    header, nonce, sealed = blob[:head_end], blob[head_end - 12 : head_end], blob[head_end:]
    pairs = sorted((k.encode(), v.encode()) for k, v in context.items())
    aad = struct.pack(">I", len(pairs)) + b"".join(
        struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v for k, v in pairs
    )
    return AESGCM(material).decrypt(nonce, sealed, header + aad)


def _database_bytes(server: Any) -> bytes:
    """Everything the server keeps at rest but the root key file: the database and its
    journals, and the audit trail."""
    parts = []
    for suffix in ("", "-wal", "-journal"):
        path = server.data_dir / f"{DB_NAME}{suffix}"
        if path.exists():
            parts.append(path.read_bytes())
    audit = sorted((server.data_dir / "audit").glob("*.log"))
    assert audit, "no audit segment found"
    # Everything of the trail: segments (compressed ones read as they are stored and
    # decompressed), digests, the wrapped signing key, export markers.
    parts += stored_files(server.data_dir / "audit").values()
    return b"".join(parts)


def _forms(secret: bytes) -> list[bytes]:
    return [secret, secret.hex().encode(), secret.hex().upper().encode(), base64.b64encode(secret)]


def test_database_never_holds_key_material_or_secrets_in_the_clear(own: Any) -> None:
    kms = own.client()
    key = kms.create_key(Description="grep me")["KeyMetadata"]
    context = {"purpose": "grep"}
    blob = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"the server made this", EncryptionContext=context
    )["CiphertextBlob"]
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"]

    root = FileRootKey(own.data_dir / "root.key")
    root_bytes = (own.data_dir / "root.key").read_bytes()
    with sqlite3.connect(f"file:{own.data_dir / DB_NAME}?mode=ro", uri=True) as db:
        rows = db.execute(f"SELECT key_arn, version, wrapped FROM {key_materials.name}").fetchall()
    assert any(arn == key["Arn"] for arn, _, _ in rows)

    stored = _database_bytes(own)
    materials = {}
    for arn, version, wrapped in rows:
        assert bytes(wrapped) in stored  # the grep sees what the database holds
        materials[arn] = root.unwrap(bytes(wrapped), material_aad(arn, version))
        assert len(materials[arn]) == 32
    # The material really is this key's: it opens the server's ciphertext.
    assert _decrypt_with_material(materials[key["Arn"]], blob, context) == b"the server made this"

    for arn, material in materials.items():
        for form in _forms(material):
            assert form not in stored, f"material of {arn} is in the database"
    for form in _forms(data_key):
        assert form not in stored, "a data key is in the database"
    for form in _forms(root_bytes):
        assert form not in stored, "the root key is in the database"
    assert own.secret_access_key.encode() not in stored, (
        "the admin secret access key is in the database"
    )
    signing = load_signer(own.data_dir / "audit", root)._key.private_bytes_raw()
    for form in _forms(signing):
        assert form not in stored, "the audit signing key is in the audit directory in plaintext"


def test_data_directory_is_readable_by_its_owner_only(own: Any) -> None:
    own.client().create_key()  # the database, its WAL and the audit segment all exist now
    assert own.data_dir.stat().st_mode & 0o077 == 0
    paths = [
        own.data_dir / "root.key",
        own.data_dir / "credentials",
        own.data_dir / DB_NAME,
        own.data_dir / f"{DB_NAME}-wal",
        *(own.data_dir / "audit").glob("*.log"),
        own.data_dir / "audit" / "signing-key.json",  # wrapped, and 0600 all the same
        *(own.data_dir / "audit" / "public-keys").glob("*.pem"),
    ]
    for path in paths:
        assert path.exists(), path
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
