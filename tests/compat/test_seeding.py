"""``strongroom serve --seed FILE``: keys with fixed ids and given material, usable by real
clients, the same in every fresh environment, applied idempotently, and bad files refused
before anything is written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from conftest import (
    POSTGRES_ENV,
    Server,
    _drop_postgres_database,
    _fresh_postgres_database,
    free_port,
    run_strongroom,
    start_server,
    stop_server,
)

from ._support import ACCOUNT, ALL_KMS, assert_kms_error, make_client, new_principal

pytestmark = pytest.mark.compat

OTHER_ACCOUNT = "444455556666"
SYMMETRIC_ID = "5eed0001-0000-4000-8000-000000000001"
GENERATED_ID = "5eed0002-0000-4000-8000-000000000002"
RSA_ID = "5eed0003-0000-4000-8000-000000000003"
EC_ID = "5eed0004-0000-4000-8000-000000000004"
HMAC_ID = "5eed0005-0000-4000-8000-000000000005"
OTHER_ID = "5eed0006-0000-4000-8000-000000000006"

SYMMETRIC_MATERIAL = hashlib.sha256(b"strongroom seed test").digest()
HMAC_MATERIAL = hashlib.sha512(b"strongroom seed test hmac").digest()[:40]  # 32-64 for HMAC_256
RSA_KEY = rsa.generate_private_key(65537, 2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
MESSAGE = b"seeded environments are reproducible"


def _pem(key: Any) -> str:
    return str(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _policy(*principals: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "seeded",
                "Effect": "Allow",
                "Principal": {"AWS": list(principals)},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def _seed() -> dict[str, Any]:
    return {
        "region": "us-east-1",
        "keys": [
            {
                "id": SYMMETRIC_ID,
                "description": "orders",
                "material": _b64(SYMMETRIC_MATERIAL),
                "aliases": ["alias/seeded-orders", "alias/seeded-orders-2"],
                "tags": {"team": "payments"},
                "policy": _policy(f"arn:aws:iam::{ACCOUNT}:root"),
            },
            {"id": GENERATED_ID, "description": "made per environment"},
            {
                "id": RSA_ID,
                "key_spec": "RSA_2048",
                "key_usage": "SIGN_VERIFY",
                "material": _pem(RSA_KEY),
            },
            {
                "id": EC_ID,
                "key_spec": "ECC_NIST_P256",
                "key_usage": "SIGN_VERIFY",
                "material": _pem(EC_KEY),
                "aliases": "alias/seeded-signer",
            },
            {
                "id": HMAC_ID,
                "key_spec": "HMAC_256",
                "key_usage": "GENERATE_VERIFY_MAC",
                "material": _b64(HMAC_MATERIAL),
            },
            {
                "id": OTHER_ID,
                "account": OTHER_ACCOUNT,
                "region": "eu-west-1",
                "enabled": False,
                "description": "another account, another region",
            },
        ],
    }


def _write(path: Path, document: dict[str, Any] | str) -> Path:
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    path.write_text(text)
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def databases(request: pytest.FixtureRequest) -> Iterator[Callable[[], str | None]]:
    """Makes empty databases of the backend (None: SQLite in the data directory)."""
    if request.param == "sqlite":
        yield lambda: None
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    made: list[str] = []

    def make() -> str:
        url, name = _fresh_postgres_database(base)
        made.append(name)
        return url

    yield make
    for name in made:
        _drop_postgres_database(base, name)


def _snapshot(kms: Any, key_ids: list[str]) -> dict[str, Any]:
    return {
        key_id: {
            "meta": kms.describe_key(KeyId=key_id)["KeyMetadata"],
            "aliases": kms.list_aliases(KeyId=key_id)["Aliases"],
            "tags": kms.list_resource_tags(KeyId=key_id)["Tags"],
            "policy": kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"],
        }
        for key_id in key_ids
    }


def _serve_fails(data_dir: Path, seed: Path, database_url: str | None = None) -> str:
    """Start a server that must refuse ``seed``: exit status 2, and its stderr."""
    args = ["serve", "--port", str(free_port()), "--data-dir", str(data_dir), "--seed", str(seed)]
    if database_url:
        args += ["--database-url", database_url]
    result = run_strongroom(args, check=False)
    assert result.returncode == 2, result.stderr
    return result.stderr


US_KEYS = [SYMMETRIC_ID, GENERATED_ID, RSA_ID, EC_ID, HMAC_ID]


def _check_seeded(server: Server, *, other_account: bool = True) -> None:
    kms = server.client()
    meta = kms.describe_key(KeyId="alias/seeded-orders")["KeyMetadata"]
    assert meta["KeyId"] == SYMMETRIC_ID
    assert meta["Arn"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{SYMMETRIC_ID}"
    assert (meta["Description"], meta["Enabled"], meta["Origin"]) == ("orders", True, "AWS_KMS")
    aliases = {a["AliasName"] for a in kms.list_aliases(KeyId=SYMMETRIC_ID)["Aliases"]}
    assert aliases == {"alias/seeded-orders", "alias/seeded-orders-2"}
    assert kms.list_resource_tags(KeyId=SYMMETRIC_ID)["Tags"] == [
        {"TagKey": "team", "TagValue": "payments"}
    ]
    policy = kms.get_key_policy(KeyId=SYMMETRIC_ID, PolicyName="default")["Policy"]
    assert json.loads(policy) == _policy(f"arn:aws:iam::{ACCOUNT}:root")
    generated = kms.describe_key(KeyId=GENERATED_ID)["KeyMetadata"]
    assert generated["Description"] == "made per environment" and generated["Enabled"]
    expected = {
        RSA_ID: ("RSA_2048", "SIGN_VERIFY"),
        EC_ID: ("ECC_NIST_P256", "SIGN_VERIFY"),
        HMAC_ID: ("HMAC_256", "GENERATE_VERIFY_MAC"),
    }
    for key_id, (spec, usage) in expected.items():
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert (meta["KeySpec"], meta["KeyUsage"], meta["Origin"]) == (spec, usage, "AWS_KMS")
    if not other_account:
        return
    # The key in the other account and Region, seen by a user of that account.
    user = new_principal(server, "seeded", account=OTHER_ACCOUNT, policy=ALL_KMS)
    eu = make_client(
        server.endpoint, user["AccessKeyId"], user["SecretAccessKey"], region="eu-west-1"
    )
    other = eu.describe_key(KeyId=OTHER_ID)["KeyMetadata"]
    assert other["Arn"] == f"arn:aws:kms:eu-west-1:{OTHER_ACCOUNT}:key/{OTHER_ID}"
    assert (other["KeyState"], other["Enabled"]) == ("Disabled", False)
    assert other["Description"] == "another account, another region"


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def test_seeded_keys_work_and_come_back_the_same_in_a_fresh_environment(
    tmp_path: Path, databases: Callable[[], str | None]
) -> None:
    seed = _write(tmp_path / "seed.yaml", _seed())
    data = tmp_path / "data"
    database = databases()
    server = start_server(data, database, "--seed", str(seed))
    try:
        _check_seeded(server)
        kms = server.client()
        blob = kms.encrypt(
            KeyId="alias/seeded-orders", Plaintext=MESSAGE, EncryptionContext={"env": "ci"}
        )["CiphertextBlob"]
        per_environment = kms.encrypt(KeyId=GENERATED_ID, Plaintext=MESSAGE)["CiphertextBlob"]
        # Signatures verify under the public keys of the PEM keys the seed gave.
        rsa_signature = kms.sign(
            KeyId=RSA_ID, Message=MESSAGE, SigningAlgorithm="RSASSA_PSS_SHA_256"
        )["Signature"]
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        RSA_KEY.public_key().verify(rsa_signature, MESSAGE, pss, hashes.SHA256())
        ec_signature = kms.sign(
            KeyId="alias/seeded-signer", Message=MESSAGE, SigningAlgorithm="ECDSA_SHA_256"
        )["Signature"]
        EC_KEY.public_key().verify(ec_signature, MESSAGE, ec.ECDSA(hashes.SHA256()))
        assert kms.get_public_key(KeyId=RSA_ID)["PublicKey"] == _public_der(RSA_KEY)
        assert kms.get_public_key(KeyId=EC_ID)["PublicKey"] == _public_der(EC_KEY)
        # The MAC is the HMAC of the given secret (a known answer computed here).
        mac = kms.generate_mac(KeyId=HMAC_ID, Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")["Mac"]
        assert mac == hmac.new(HMAC_MATERIAL, MESSAGE, hashlib.sha256).digest()
        before = _snapshot(kms, US_KEYS)
    finally:
        stop_server(server)

    # The same data and the same seed: nothing changes.
    server = start_server(data, database, "--seed", str(seed))
    try:
        assert "seed: 6 keys: 0 created, 0 updated, 6 unchanged" in server.log_path.read_text()
        kms = server.client()
        assert _snapshot(kms, US_KEYS) == before
        assert kms.decrypt(CiphertextBlob=per_environment)["Plaintext"] == MESSAGE
    finally:
        stop_server(server)

    # A fresh environment (new data directory and root key; on PostgreSQL a new database)
    # with the same seed: what the given material made before still decrypts and verifies.
    shutil.rmtree(data)
    server = start_server(data, databases(), "--seed", str(seed))
    try:
        assert "seed: 6 keys: 6 created, 0 updated, 0 unchanged" in server.log_path.read_text()
        _check_seeded(server, other_account=False)
        kms = server.client()
        plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"env": "ci"})["Plaintext"]
        assert plain == MESSAGE
        assert kms.verify(
            KeyId=RSA_ID,
            Message=MESSAGE,
            Signature=rsa_signature,
            SigningAlgorithm="RSASSA_PSS_SHA_256",
        )["SignatureValid"]
        assert kms.verify_mac(KeyId=HMAC_ID, Message=MESSAGE, MacAlgorithm="HMAC_SHA_256", Mac=mac)[
            "MacValid"
        ]
        # A key without given material got new material in the new environment.
        assert_kms_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=per_environment)
    finally:
        stop_server(server)


A_ID = "5eed00a0-0000-4000-8000-0000000000a0"
B_ID = "5eed00b0-0000-4000-8000-0000000000b0"


def test_changes_to_named_fields_are_applied_and_a_bad_change_writes_nothing(
    tmp_path: Path, databases: Callable[[], str | None]
) -> None:
    data, database = tmp_path / "data", databases()
    first = {
        "keys": [
            {"id": B_ID},
            {
                "id": A_ID,
                "description": "v1",
                "material": _b64(SYMMETRIC_MATERIAL),
                "aliases": ["alias/seeded-a1", "alias/seeded-a2"],
                "tags": {"team": "x", "env": "dev"},
            },
        ]
    }
    server = start_server(data, database, "--seed", str(_write(tmp_path / "v1.yaml", first)))
    try:
        kms = server.client()
        blob = kms.encrypt(KeyId=A_ID, Plaintext=MESSAGE)["CiphertextBlob"]
        # Changes through the API: to a field the file does not name, and to two it does.
        kms.update_key_description(KeyId=B_ID, Description="changed through the API")
        kms.create_alias(AliasName="alias/seeded-api", TargetKeyId=A_ID)
        kms.tag_resource(KeyId=A_ID, Tags=[{"TagKey": "extra", "TagValue": "1"}])
    finally:
        stop_server(server)

    admin = f"arn:aws:iam::{ACCOUNT}:user/admin"
    second = {
        "keys": [
            {"id": B_ID, "aliases": ["alias/seeded-a1"]},
            {
                "id": A_ID,
                "description": "v2",
                "enabled": False,
                "material": _b64(SYMMETRIC_MATERIAL),
                "aliases": ["alias/seeded-a2", "alias/seeded-a3"],
                "tags": {"team": "y"},
                "policy": _policy(f"arn:aws:iam::{ACCOUNT}:root", admin),
            },
        ]
    }
    v2 = _write(tmp_path / "v2.yaml", second)
    server = start_server(data, database, "--seed", str(v2))
    try:
        log = server.log_path.read_text()
        assert f"keys[0] (id {B_ID}): updated aliases" in log
        assert f"keys[1] (id {A_ID}): updated description, enabled, policy, tags, aliases" in log
        kms = server.client()
        a = kms.describe_key(KeyId=A_ID)["KeyMetadata"]
        assert (a["Description"], a["Enabled"], a["KeyState"]) == ("v2", False, "Disabled")
        aliases = {x["AliasName"]: x.get("TargetKeyId") for x in kms.list_aliases()["Aliases"]}
        assert {k: v for k, v in aliases.items() if k.startswith("alias/seeded-")} == {
            "alias/seeded-a1": B_ID,  # moved to the key that names it now
            "alias/seeded-a2": A_ID,
            "alias/seeded-a3": A_ID,  # alias/seeded-api is gone: A names its aliases
        }
        assert kms.list_resource_tags(KeyId=A_ID)["Tags"] == [{"TagKey": "team", "TagValue": "y"}]
        policy = kms.get_key_policy(KeyId=A_ID, PolicyName="default")["Policy"]
        assert json.loads(policy) == second["keys"][1]["policy"]
        b = kms.describe_key(KeyId=B_ID)["KeyMetadata"]
        assert b["Description"] == "changed through the API"  # B does not name it
        kms.enable_key(KeyId=A_ID)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == MESSAGE
        before = _snapshot(kms, [A_ID, B_ID])
    finally:
        stop_server(server)

    # Other material for A (keys[1]) fails the start, and B's change (keys[0]) is not
    # written either: one transaction.
    third = json.loads(json.dumps(second))
    third["keys"][0]["description"] = "must not be written"
    third["keys"][1]["material"] = _b64(bytes(32))
    stderr = _serve_fails(data, _write(tmp_path / "v3.yaml", third), database)
    assert f"keys[1] (id {A_ID}): material: the key exists with other key material" in stderr
    spec_changed = json.loads(json.dumps(second))
    del spec_changed["keys"][1]["material"]
    spec_changed["keys"][1].update(key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    stderr = _serve_fails(data, _write(tmp_path / "v4.yaml", spec_changed), database)
    assert (
        f"keys[1] (id {A_ID}): key_spec: the key exists with key spec SYMMETRIC_DEFAULT, "
        "not HMAC_256; a key's spec never changes"
    ) in stderr

    server = start_server(data, database)
    try:
        assert _snapshot(server.client(), [A_ID, B_ID]) == before
    finally:
        stop_server(server)


def test_failures_found_in_the_database_write_nothing(
    tmp_path: Path, databases: Callable[[], str | None]
) -> None:
    data, database = tmp_path / "data", databases()
    cases = [
        (
            _policy(f"arn:aws:iam::{ACCOUNT}:user/nobody"),
            "policy: MalformedPolicyDocumentException: Policy contains a statement with one or "
            "more invalid principals.",
        ),
        (
            # Only the admin user: the account root (the seed's caller) is locked out.
            _policy(f"arn:aws:iam::{ACCOUNT}:user/admin"),
            "policy: MalformedPolicyDocumentException: The new key policy will not allow you "
            "to update the key policy in the future.",
        ),
    ]
    for i, (policy, rule) in enumerate(cases):
        seed = {"keys": [{"id": A_ID}, {"id": B_ID, "policy": policy}]}
        stderr = _serve_fails(data, _write(tmp_path / f"bad{i}.yaml", seed), database)
        assert f"keys[1] (id {B_ID}): {rule}" in stderr
    server = start_server(data, database)
    try:
        kms = server.client()
        for key_id in (A_ID, B_ID):
            assert_kms_error("NotFoundException", kms.describe_key, KeyId=key_id)
    finally:
        stop_server(server)
    # The lockout check can be bypassed, as CreateKey's.
    seed = {
        "keys": [
            {
                "id": B_ID,
                "policy": cases[1][0],
                "bypass_policy_lockout_safety_check": True,
            }
        ]
    }
    server = start_server(data, database, "--seed", str(_write(tmp_path / "ok.yaml", seed)))
    stop_server(server)
    assert f"keys[0] (id {B_ID}): created key" in server.log_path.read_text()


BAD_FILES: list[tuple[str, Any, str]] = [
    ("not YAML", "keys: [", "not valid YAML"),
    (
        "unknown field",
        {"keys": [{"id": A_ID, "descripton": "typo"}]},
        f"keys[0] (id {A_ID}): unknown field 'descripton'",
    ),
    (
        "bad base64",
        {"keys": [{"id": A_ID, "material": "not*base64"}]},
        f"keys[0] (id {A_ID}): material: is not valid base64",
    ),
    (
        "wrong length",
        {"keys": [{"id": B_ID}, {"id": A_ID, "material": _b64(bytes(16))}]},
        f"keys[1] (id {A_ID}): material: SYMMETRIC_DEFAULT key material must be 32 bytes, "
        "got 16 bytes",
    ),
    (
        "PEM of another spec",
        {
            "keys": [
                {
                    "id": A_ID,
                    "key_spec": "RSA_2048",
                    "key_usage": "SIGN_VERIFY",
                    "material": _pem(EC_KEY),
                }
            ]
        },
        f"keys[0] (id {A_ID}): material: the private key is an EC key on curve secp256r1, "
        "which does not fit key spec RSA_2048",
    ),
    (
        "reserved alias",
        {"keys": [{"id": A_ID, "aliases": ["alias/aws/s3"]}]},
        f"keys[0] (id {A_ID}): aliases[0] (alias/aws/s3): alias/aws/s3: aliases that begin "
        "with alias/aws/ are reserved for AWS managed keys.",
    ),
    (
        "duplicate key id",
        {"keys": [{"id": A_ID}, {"id": A_ID}]},
        f"keys[1] (id {A_ID}): id: duplicate key id, also keys[0]",
    ),
    (
        "duplicate alias",
        {"keys": [{"id": A_ID, "aliases": "alias/x"}, {"id": B_ID, "aliases": "alias/x"}]},
        f"keys[1] (id {B_ID}): aliases: duplicate alias alias/x, also keys[0] (id {A_ID})",
    ),
    (
        "malformed policy",
        {"keys": [{"id": A_ID, "policy": {"Version": "2012-10-17", "Statement": [{}]}}]},
        f"keys[0] (id {A_ID}): policy: MalformedPolicyDocumentException:",
    ),
    (
        "rotation period",
        {"keys": [{"id": A_ID, "rotation": {"enabled": True, "period_days": 30}}]},
        f"keys[0] (id {A_ID}): rotation.period_days: must be a whole number of days from 90 "
        "to 2560, not 30",
    ),
]


@pytest.mark.parametrize(
    ("document", "message"), [pytest.param(d, m, id=name) for name, d, m in BAD_FILES]
)
def test_bad_seed_files_fail_the_start_before_anything_is_written(
    tmp_path: Path, document: Any, message: str
) -> None:
    seed = _write(tmp_path / "seed.yaml", document)
    data = tmp_path / "data"
    stderr = _serve_fails(data, seed)
    assert stderr.startswith(f"strongroom: seed file {seed}: "), stderr
    assert message in stderr
    assert not data.exists()  # the file is checked before the data directory is made


def test_a_missing_seed_file_fails_the_start(tmp_path: Path) -> None:
    stderr = _serve_fails(tmp_path / "data", tmp_path / "absent.yaml")
    assert f"seed file {tmp_path / 'absent.yaml'}: cannot read it:" in stderr


def test_serve_help_documents_the_seed_option() -> None:
    result = run_strongroom(["serve", "--help"])
    assert "--seed FILE" in result.stdout and "STRONGROOM_SEED" in result.stdout


def test_strongroom_seed_variable_seeds_serve_but_not_admin_commands(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", "keys: [")
    env = {**os.environ, "STRONGROOM_SEED": str(bad)}
    data = ["--data-dir", str(tmp_path / "data")]

    def strongroom(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "strongroom.cli.main", *args, *data]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    served = strongroom("serve", "--port", str(free_port()))
    assert served.returncode == 2 and f"seed file {bad}: not valid YAML" in served.stderr
    listed = strongroom("admin", "list-principals")
    assert listed.returncode == 0, listed.stderr
