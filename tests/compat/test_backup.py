"""``strongroom admin backup`` and ``admin restore``, as an operator runs them: a backup
taken while a server serves, restored into a new data directory and database of either
backend, served again: old ciphertexts decrypt, aliases, grants, policies, tags and users
are there, and the audit trail verifies. A damaged file or a target with data in it is
refused in one line and writes nothing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import (
    POSTGRES_ENV,
    Server,
    _drop_postgres_database,
    _fresh_postgres_database,
    run_in_process,
    start_server,
    stop_server,
)

from ._byok import import_material
from ._support import ACCOUNT, ALL_KMS, make_client, new_principal

pytestmark = pytest.mark.compat

CONTEXT = {"purpose": "backup test"}


class Databases:
    """Fresh PostgreSQL databases for one test (None for SQLite in the data directory),
    dropped when it ends."""

    def __init__(self) -> None:
        self.base = os.environ.get(POSTGRES_ENV)
        self.made: list[str] = []

    def url(self, backend: str) -> str | None:
        if backend == "sqlite":
            return None
        if not self.base:
            pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
        url, name = _fresh_postgres_database(self.base)
        self.made.append(name)
        return url

    def drop(self) -> None:
        for name in self.made:
            assert self.base is not None
            _drop_postgres_database(self.base, name)


@pytest.fixture
def databases() -> Iterator[Databases]:
    made = Databases()
    yield made
    made.drop()


@dataclass
class Made:
    """What a test made before the backup, to find after the restore."""

    blobs: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # key, blob, plaintext
    alias: str = ""
    alias_key: str = ""
    grant_key: str = ""
    grant_id: str = ""
    policy_key: str = ""
    policy: str = ""
    tagged_key: str = ""
    hmac_key: str = ""
    mac: bytes = b""
    imported_key: str = ""
    material: bytes = b""
    user: dict[str, Any] = field(default_factory=dict)


def _populate(server: Server) -> Made:
    kms = server.client()
    made = Made()
    for i in range(3):
        key = kms.create_key(Description=f"backup {i}")["KeyMetadata"]["KeyId"]
        plaintext = os.urandom(24)
        blob = kms.encrypt(KeyId=key, Plaintext=plaintext, EncryptionContext=CONTEXT)
        made.blobs.append((key, blob["CiphertextBlob"], plaintext))
    made.alias_key = made.blobs[0][0]
    made.alias = f"alias/backup-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=made.alias, TargetKeyId=made.alias_key)
    kms.rotate_key_on_demand(KeyId=made.blobs[1][0])  # a second material version
    plaintext = os.urandom(16)
    blob = kms.encrypt(KeyId=made.blobs[1][0], Plaintext=plaintext, EncryptionContext=CONTEXT)
    made.blobs.append((made.blobs[1][0], blob["CiphertextBlob"], plaintext))
    made.user = new_principal(server, "backup", policy=ALL_KMS)
    made.grant_key = made.blobs[2][0]
    made.grant_id = kms.create_grant(
        KeyId=made.grant_key, GranteePrincipal=made.user["arn"], Operations=["Decrypt"]
    )["GrantId"]
    made.policy_key = made.blobs[0][0]
    made.policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "backup",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    kms.put_key_policy(KeyId=made.policy_key, PolicyName="default", Policy=made.policy)
    made.tagged_key = made.blobs[1][0]
    kms.tag_resource(KeyId=made.tagged_key, Tags=[{"TagKey": "team", "TagValue": "ops"}])
    made.hmac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")[
        "KeyMetadata"
    ]["KeyId"]
    made.mac = kms.generate_mac(KeyId=made.hmac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")[
        "Mac"
    ]
    made.imported_key = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    made.material = os.urandom(32)
    import_material(kms, made.imported_key, made.material)
    plaintext = os.urandom(8)
    blob = kms.encrypt(KeyId=made.imported_key, Plaintext=plaintext, EncryptionContext=CONTEXT)
    made.blobs.append((made.imported_key, blob["CiphertextBlob"], plaintext))
    return made


def _check(server: Server, made: Made) -> None:
    """What ``made`` made is all there on ``server``, which serves the restored data."""
    kms = server.client()
    for key, blob, plaintext in made.blobs:
        back = kms.decrypt(CiphertextBlob=blob, EncryptionContext=CONTEXT)
        assert back["Plaintext"] == plaintext and back["KeyId"].endswith(key)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[made.alias] == made.alias_key
    grants = kms.list_grants(KeyId=made.grant_key)["Grants"]
    assert [g["GrantId"] for g in grants] == [made.grant_id]
    policy = kms.get_key_policy(KeyId=made.policy_key, PolicyName="default")["Policy"]
    assert json.loads(policy) == json.loads(made.policy)
    tags = kms.list_resource_tags(KeyId=made.tagged_key)["Tags"]
    assert tags == [{"TagKey": "team", "TagValue": "ops"}]
    rotations = kms.list_key_rotations(KeyId=made.blobs[1][0])["Rotations"]
    assert len(rotations) == 1
    assert kms.verify_mac(
        KeyId=made.hmac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256", Mac=made.mac
    )["MacValid"]
    # The user and its access key (wrapped under the root key) came along.
    user = make_client(server.endpoint, made.user["AccessKeyId"], made.user["SecretAccessKey"])
    assert user.describe_key(KeyId=made.alias_key)["KeyMetadata"]["KeyId"] == made.alias_key
    # A new write goes on after the restored ones (PostgreSQL sequences moved on).
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/after-{uuid.uuid4().hex[:8]}", TargetKeyId=key)
    kms.disable_key(KeyId=key)


def _storage(data_dir: Path, url: str | None) -> list[str]:
    return ["--data-dir", str(data_dir)] + (["--database-url", url] if url else [])


def _backup(server: Server, file: Path) -> dict[str, Any]:
    done = run_in_process(["admin", "backup", str(file), *server.storage_args()])
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _restore(file: Path, data_dir: Path, url: str | None) -> dict[str, Any]:
    done = run_in_process(["admin", "restore", str(file), *_storage(data_dir, url)])
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _verify_audit(data_dir: Path) -> str:
    done = run_in_process(["audit", "verify", "--data-dir", str(data_dir)], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _audit_events(data_dir: Path, *extra: str) -> tuple[str, list[dict[str, Any]]]:
    out = run_in_process(
        ["audit", "events", "--limit", "1000000", "--data-dir", str(data_dir), *extra]
    )
    return out.stdout, [json.loads(line) for line in out.stdout.splitlines()]


def _members(file: Path) -> dict[str, bytes]:
    with tarfile.open(file, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


# -- round trips ----------------------------------------------------------------------------


@dataclass
class Source:
    """A server's data, populated and backed up while it served (then stopped)."""

    backend: str
    data_dir: Path
    made: Made
    backup: Path
    summary: dict[str, Any]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    made_dbs = Databases()
    base = tmp_path_factory.mktemp(f"source-{request.param}")
    server = start_server(base / "data", made_dbs.url(request.param))
    try:
        made = _populate(server)
        summary = _backup(server, base / "backup.tar.gz")
    finally:
        stop_server(server)
    yield Source(request.param, base / "data", made, base / "backup.tar.gz", summary)
    made_dbs.drop()


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_backup_restored_serves_what_was_there(
    source: Source, target: str, tmp_path: Path, databases: Databases
) -> None:
    # SQLite to SQLite, PostgreSQL to PostgreSQL, and from each to the other.
    assert source.backup.stat().st_mode & 0o777 == 0o600
    summary = source.summary
    # a segment, the signing key and its public key (no digest: the server still runs)
    assert summary["Revision"] and summary["Rows"] > 0 and summary["AuditFiles"] >= 1
    url = databases.url(target)
    restored = _restore(source.backup, tmp_path / "restored", url)
    assert restored["Revision"] == restored["BackupRevision"]
    verified = _verify_audit(tmp_path / "restored")
    # The intents of the changes that populated it came along, chained, and verify.
    assert "0 problems" in verified and " intent records) checked" in verified, verified
    _, events = _audit_events(tmp_path / "restored")
    assert events and all("recordType" not in e for e in events)  # no intent among them
    # The restore itself is the restored trail's last event (cli/admin_trail.py).
    restore = events[-1]
    assert (restore["eventSource"], restore["eventName"]) == ("admin.strongroom", "RestoreBackup")
    assert restore["requestParameters"] == {"backupFile": str(source.backup)}
    assert restore["responseElements"]["dataDir"] == str(tmp_path / "restored")
    again = start_server(tmp_path / "restored", url)
    try:
        _check(again, source.made)
    finally:
        stop_server(again)
    assert "0 problems" in _verify_audit(tmp_path / "restored")


def test_the_backup_holds_no_secret_that_is_not_in_the_data_directory(source: Source) -> None:
    made = source.made
    members = _members(source.backup)
    manifest = json.loads(members["manifest.json"])
    everything = b"".join(members.values())
    # Imported material and a user's access-key secret: wrapped in the database rows, in
    # plaintext nowhere.
    for secret in (made.material, made.user["SecretAccessKey"].encode()):
        assert secret not in everything
        assert base64.b64encode(secret) not in everything
    # The plaintext files are the data directory's own: the root key file, the admin's
    # credentials and the AWS config.
    assert {e["path"] for e in manifest["files"]} == {"root.key", "credentials", "config"}
    assert members["data/root.key"] == (source.data_dir / "root.key").read_bytes()
    assert manifest["root_key"]["provider"] == "file"
    assert "root key file" in manifest["root_key"]["keep"]
    assert manifest["database"]["revision"] == _head()
    assert manifest["database"]["backend"] == (
        "sqlite" if source.backend == "sqlite" else "postgresql"
    )
    tables = {t["name"]: t for t in manifest["database"]["tables"]}
    from strongroom.storage.schema import metadata

    assert set(tables) == set(metadata.tables)  # every table of storage/schema.py
    assert tables["keys"]["rows"] == 5  # three keys, the HMAC key and the imported one
    assert "database_url" not in manifest["settings"]
    assert "password" not in json.dumps(manifest["settings"])


def _head() -> str:
    from strongroom.storage.snapshot import head_revision

    return head_revision()


# -- consistency while serving --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_backup_while_writes_go_on_holds_every_write_acknowledged_before_it(
    backend: str, tmp_path: Path, databases: Databases
) -> None:
    server = start_server(tmp_path / "source", databases.url(backend))
    acknowledged: list[tuple[str, bytes, bytes, str]] = []  # key, blob, plaintext, request id
    stop = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        kms = server.client()
        try:
            while not stop.is_set():
                key = kms.create_key()["KeyMetadata"]["KeyId"]
                plaintext = os.urandom(16)
                out = kms.encrypt(KeyId=key, Plaintext=plaintext)
                kms.tag_resource(KeyId=key, Tags=[{"TagKey": "n", "TagValue": "1"}])
                request = out["ResponseMetadata"]["RequestId"]
                acknowledged.append((key, out["CiphertextBlob"], plaintext, request))
        except Exception as exc:  # noqa: BLE001  (reported by the test)
            failures.append(exc)

    writers = [threading.Thread(target=write) for _ in range(4)]
    try:
        for writer in writers:
            writer.start()
        while len(acknowledged) < 20 and not failures:
            time.sleep(0.05)
        before = list(acknowledged)  # every write acknowledged before the backup starts
        _backup(server, tmp_path / "b.tgz")
        during = len(acknowledged) - len(before)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
        stop_server(server)
    assert not failures, failures
    assert during > 0  # the writes went on while the backup ran
    url = databases.url(backend)
    _restore(tmp_path / "b.tgz", tmp_path / "restored", url)
    events = run_in_process(
        ["audit", "events", "--limit", "1000000", "--data-dir", str(tmp_path / "restored")]
    ).stdout.splitlines()
    audited = {json.loads(line)["requestID"] for line in events}
    _verify_audit(tmp_path / "restored")
    again = start_server(tmp_path / "restored", url)
    try:
        kms = again.client()
        for key, blob, plaintext, request in before:
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
            assert kms.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "n", "TagValue": "1"}]
            assert request in audited
    finally:
        stop_server(again)


# -- an older backup, refusals --------------------------------------------------------------


def test_a_backup_of_an_older_revision_is_migrated_on_restore(tmp_path: Path) -> None:
    from strongroom.storage import migrate

    old = tmp_path / "old"
    old.mkdir(mode=0o700)
    engine = sa.create_engine(f"sqlite:///{old / 'strongroom.db'}")
    migrate.upgrade(engine, "0012")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO accounts VALUES ('444455556666', 1.5)"))
    engine.dispose()
    run_in_process(["admin", "backup", str(tmp_path / "b.tgz"), "--data-dir", str(old)])
    restored = _restore(tmp_path / "b.tgz", tmp_path / "new", None)
    assert (restored["BackupRevision"], restored["Revision"]) == ("0012", _head())
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new' / 'strongroom.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == _head()
        assert conn.execute(sa.text("SELECT account_id, created FROM accounts")).all() == [
            ("444455556666", 1.5)
        ]
        assert conn.execute(sa.text("SELECT count(*) FROM faults")).scalar() == 0  # 0013's
    engine.dispose()


@pytest.fixture(scope="module")
def small_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("small")
    server = start_server(base / "data")
    try:
        server.client().create_key()
        _backup(server, base / "b.tgz")
    finally:
        stop_server(server)
    return base / "b.tgz"


def _refused(args: list[str], *expected: str) -> str:
    done = run_in_process(args, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("strongroom: "), done.stderr
    for text in expected:
        assert text in line, line
    assert "Traceback" not in done.stderr
    return line


def _same_content(archive: bytes, content: bytes) -> bool:
    try:
        return gzip.decompress(archive) == content
    except (OSError, EOFError, zlib.error):
        return False


def _damaged_copies(good: Path, tmp_path: Path) -> dict[str, Path]:
    data = good.read_bytes()
    copies = {}
    # A bit flipped anywhere: in a member, a tar header or its padding, the end-of-archive
    # blocks, the gzip trailer (CRC-32 and length).
    content = gzip.decompress(data)
    for at in [len(data) * i // 16 for i in range(1, 16)] + [len(data) - 8, len(data) - 1]:
        flipped = bytearray(data)
        flipped[at] ^= 0x01
        if _same_content(bytes(flipped), content):
            # Deflate can say the same thing two ways: a flipped distance bit inside a run
            # of zeros (tar's padding) copies zeros from elsewhere. That archive is not
            # damaged (same bytes, same CRC-32), and a restore rightly accepts it.
            continue
        copies[f"flipped at {at}"] = bytes(flipped)
    copies |= {
        "truncated": data[: len(data) * 2 // 3],
        "not gzip": b"hello, this is not a backup\n" * 10,
        "empty": b"",
    }
    # A member changed and the archive rewritten whole: gzip and tar are fine, the checksum
    # in the manifest is not.
    with tarfile.open(good, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, body in members:
            if info.name == "database/keys.jsonl":
                body = body.replace(b"Enabled", b"Disabled")
                info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    copies["tampered"] = out.getvalue()
    # A manifest that is not a Strongroom backup's.
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        body = b'{"format": "something else"}'
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    copies["foreign"] = out.getvalue()
    paths = {}
    for name, body in copies.items():
        path = tmp_path / f"{name.replace(' ', '-')}.tgz"
        path.write_bytes(body)
        paths[name] = path
    return paths


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_damaged_backup_is_refused_and_nothing_is_written(
    target: str, small_backup: Path, tmp_path: Path, databases: Databases
) -> None:
    url = databases.url(target)
    for name, path in _damaged_copies(small_backup, tmp_path).items():
        data_dir = tmp_path / f"restored-{name.replace(' ', '-')}"
        line = _refused(["admin", "restore", str(path), *_storage(data_dir, url)], "cannot restore")
        assert "nothing was restored" in line, (name, line)
        assert not data_dir.exists(), name
        if url is not None:
            assert _tables(url) == [], name
    assert "checksum" in _refused(
        ["admin", "restore", str(tmp_path / "tampered.tgz"), *_storage(tmp_path / "x", url)]
    )


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_a_restore_into_a_data_directory_with_files_is_refused(
    small_backup: Path, tmp_path: Path
) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "something").write_text("mine")
    _refused(["admin", "restore", str(small_backup), "--data-dir", str(target)], "is not empty")
    assert [p.name for p in target.iterdir()] == ["something"]


def test_a_restore_into_a_database_with_tables_is_refused(
    small_backup: Path, tmp_path: Path, databases: Databases
) -> None:
    url = databases.url("postgres")
    assert url is not None
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE mine (x int)"))
    engine.dispose()
    _refused(
        ["admin", "restore", str(small_backup), *_storage(tmp_path / "new", url)],
        "is not empty",
        "new, empty database",
    )
    assert not (tmp_path / "new").exists()
    assert _tables(url) == ["mine"]


def test_a_restore_that_fails_while_loading_leaves_nothing(
    small_backup: Path, tmp_path: Path
) -> None:
    # A valid archive (checksums right) whose rows the database refuses: a key's material
    # row names a key that is not there. Everything the restore wrote goes again.
    with tarfile.open(small_backup, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    manifest = json.loads(members[0][1])
    out = io.BytesIO()
    bodies = dict((m.name, b) for m, b in members)
    bodies["database/keys.jsonl"] = b""
    for table in manifest["database"]["tables"]:
        body = bodies[table["member"]]
        table["size"], table["sha256"] = len(body), hashlib.sha256(body).hexdigest()
        if table["name"] == "keys":
            table["rows"] = 0
    bodies["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, _ in members:
            body = bodies[info.name]
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    bad = tmp_path / "orphans.tgz"
    bad.write_bytes(out.getvalue())
    line = _refused(
        ["admin", "restore", str(bad), "--data-dir", str(tmp_path / "new")], "database refused"
    )
    assert "FOREIGN KEY" in line
    assert not (tmp_path / "new").exists()


def test_a_backup_never_overwrites_a_file(small_backup: Path, tmp_path: Path) -> None:
    before = small_backup.read_bytes()
    data_dir = small_backup.parent / "data"
    _refused(
        ["admin", "backup", str(small_backup), "--data-dir", str(data_dir)],
        "exists: choose another file name",
    )
    assert small_backup.read_bytes() == before


def test_a_backup_of_a_data_directory_that_is_not_there_is_refused(tmp_path: Path) -> None:
    _refused(
        ["admin", "backup", str(tmp_path / "b.tgz"), "--data-dir", str(tmp_path / "none")],
        "no data directory",
    )
    assert not (tmp_path / "b.tgz").exists()
    assert list(tmp_path.iterdir()) == []


def test_a_backup_is_gzip_with_the_manifest_first(small_backup: Path) -> None:
    with gzip.open(small_backup) as f, tarfile.open(fileobj=f, mode="r|") as tar:
        first = tar.next()
        assert first is not None and first.name == "manifest.json"
        manifest = json.loads(tar.extractfile(first).read())  # type: ignore[union-attr]
    assert (manifest["format"], manifest["version"]) == ("strongroom-backup", 1)
    assert {"created", "strongroom", "database", "files", "audit", "root_key", "settings"} <= set(
        manifest
    )


# -- root keys in a token -------------------------------------------------------------------


def _softhsm_installed() -> bool:
    from strongroom.keystores import softhsm

    return any(p.is_file() for p in softhsm.MODULE_PATHS)


needs_softhsm = pytest.mark.skipif(not _softhsm_installed(), reason="SoftHSM2 is not installed")


def _some_ciphertexts(server: Server) -> list[tuple[bytes, bytes]]:
    kms = server.client()
    made = []
    for _ in range(2):
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        plaintext = os.urandom(12)
        made.append((kms.encrypt(KeyId=key, Plaintext=plaintext)["CiphertextBlob"], plaintext))
    return made


@needs_softhsm
def test_a_softhsm_root_key_goes_with_the_data_directory(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", None, "--root-key", "softhsm")
    try:
        made = _some_ciphertexts(server)
        _backup(server, tmp_path / "b.tgz")
    finally:
        stop_server(server)
    manifest = json.loads(_members(tmp_path / "b.tgz")["manifest.json"])
    assert manifest["root_key"]["provider"] == "softhsm"
    assert "SoftHSM2 token" in manifest["root_key"]["keep"]
    paths = {e["path"] for e in manifest["files"]}
    assert "softhsm/root.pin" in paths and "root.key" not in paths
    _restore(tmp_path / "b.tgz", tmp_path / "restored", None)
    again = start_server(tmp_path / "restored", None, "--root-key", "softhsm")
    try:
        kms = again.client()
        for blob, plaintext in made:
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    finally:
        stop_server(again)


@needs_softhsm
def test_an_hsm_root_key_is_only_referenced_never_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from strongroom.keystores import softhsm

    from .test_hsm_root import PIN, PIN_ENV, make_token

    conf = make_token(tmp_path / "hsm", "hsm-root")
    monkeypatch.setenv(softhsm.CONF_ENV, str(conf))
    monkeypatch.setenv(PIN_ENV, PIN)
    options = ["--root-key", "pkcs11", "--pkcs11-module", str(softhsm.module_path())]
    options += ["--pkcs11-token-label", "hsm-root", "--pkcs11-pin-env", PIN_ENV]
    server = start_server(tmp_path / "data", None, *options)
    try:
        made = _some_ciphertexts(server)
        done = run_in_process(
            ["admin", "backup", str(tmp_path / "b.tgz"), *server.storage_args(), *options]
        )
    finally:
        stop_server(server)
    members = _members(tmp_path / "b.tgz")
    assert PIN.encode() not in b"".join(members.values())
    manifest = json.loads(members["manifest.json"])
    root = manifest["root_key"]
    assert root["provider"] == "pkcs11" and not root["file_in_backup"]
    assert "'hsm-root'" in root["keep"] and PIN_ENV in root["keep"]
    assert root["keep"] == json.loads(done.stdout)["RootKey"]
    assert [e["token_label"] for e in root["registry"]] == ["hsm-root"]
    assert {e["path"] for e in manifest["files"]} == {"credentials", "config"}
    _restore(tmp_path / "b.tgz", tmp_path / "restored", None)
    settings = (tmp_path / "restored" / "backup-settings.toml").read_text()
    assert 'root_key = "pkcs11"' in settings and f'pkcs11_pin_env = "{PIN_ENV}"' in settings
    config = ["--config", str(tmp_path / "restored" / "backup-settings.toml")]
    again = start_server(tmp_path / "restored", None, *config)
    try:
        kms = again.client()
        for blob, plaintext in made:
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    finally:
        stop_server(again)


def test_without_root_key_the_key_file_stays_out_and_is_needed_to_serve(
    small_backup: Path, tmp_path: Path
) -> None:
    data_dir = small_backup.parent / "data"
    done = run_in_process(
        [
            "admin",
            "backup",
            str(tmp_path / "b.tgz"),
            "--without-root-key",
            "--data-dir",
            str(data_dir),
        ]
    )
    assert "--without-root-key" in json.loads(done.stdout)["RootKey"]
    manifest = json.loads(_members(tmp_path / "b.tgz")["manifest.json"])
    assert not manifest["root_key"]["file_in_backup"]
    assert "root.key" not in {e["path"] for e in manifest["files"]}
    done = run_in_process(
        ["admin", "restore", str(tmp_path / "b.tgz"), "--data-dir", str(tmp_path / "restored")]
    )
    # Its event is in the restored trail, without a digest: the root key is not there yet.
    assert "written without a signed digest" in done.stderr, done.stderr
    _, events = _audit_events(tmp_path / "restored", "--event-name", "RestoreBackup")
    assert len(events) == 1
    assert "0 problems" in _verify_audit(tmp_path / "restored")
    from conftest import run_strongroom

    refused = run_strongroom(
        ["serve", "--port", "0", "--data-dir", str(tmp_path / "restored")], check=False
    )
    assert refused.returncode == 2 and "there is no root key" in refused.stderr
    key = tmp_path / "restored" / "root.key"
    key.write_bytes((data_dir / "root.key").read_bytes())
    key.chmod(0o600)
    again = start_server(tmp_path / "restored")
    try:
        assert len(again.client().list_keys()["Keys"]) == 1
    finally:
        stop_server(again)


def test_a_segment_being_written_is_copied_up_to_its_last_complete_event(
    small_backup: Path, tmp_path: Path
) -> None:
    # As a live writer leaves it: complete events, half an event, zeros written ahead.
    import shutil

    data_dir = tmp_path / "data"
    shutil.copytree(small_backup.parent / "data", data_dir)
    [segment] = (data_dir / "audit").glob("*.log")
    complete = segment.read_bytes()
    with segment.open("ab") as f:
        f.write(complete.splitlines(keepends=True)[-1][:50] + bytes(4096))
    (data_dir / "audit" / "operator-notes.txt").write_text('{"other": "files go whole"}')
    run_in_process(["admin", "backup", str(tmp_path / "b.tgz"), "--data-dir", str(data_dir)])
    members = _members(tmp_path / "b.tgz")
    assert members[f"audit/{segment.name}"] == complete
    assert members["audit/operator-notes.txt"] == b'{"other": "files go whole"}'
    _restore(tmp_path / "b.tgz", tmp_path / "restored", None)
    assert "0 problems" in _verify_audit(tmp_path / "restored")
