"""Upgrades: what an earlier version of Strongroom left on disk opens in this one.

Each ``tests/vectors/v<N>/`` (made once by ``tools/make_upgrade_vectors.py`` and never
remade) holds a SQLite data directory, a PostgreSQL dump with its data directory, and the
outputs of Encrypt, GenerateDataKey, Sign and GenerateMac made by version N. A server of
this version starts on a copy of each (migrating the schema forward), shows the same keys,
aliases, tags, policy, grant and key states, decrypts and verifies every vector, and the
audit trail it carries on still verifies."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    POSTGRES_ENV,
    Server,
    _drop_postgres_database,
    _fresh_postgres_database,
    run_in_process,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.compat

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
VERSIONS = sorted(p.name for p in VECTORS.glob("v[0-9]*") if p.is_dir())


def _copy_data_dir(source: Path, target: Path) -> Path:
    """The data directory with the modes a server leaves (git keeps none of them)."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)
    return target


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "postgresql" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    yield request.param


@pytest.fixture
def old_server(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A server of this version on a copy of version N's storage, and N's vectors."""
    source = VECTORS / request.param / backend
    data_dir = _copy_data_dir(source / "data", tmp_path / "data")
    url = name = None
    base = os.environ.get(POSTGRES_ENV, "")
    if backend == "postgresql":
        url, name = _fresh_postgres_database(base)
        conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        restored = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(source / "dump.sql"), conninfo],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert restored.returncode == 0, restored.stderr
    server = start_server(data_dir, url)
    try:
        yield server, json.loads((source / "vectors.json").read_text())
    finally:
        stop_server(server)
        if name:
            _drop_postgres_database(base, name)


def _b(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.mark.parametrize("old_server", VERSIONS, indirect=True)
def test_a_later_version_opens_what_an_earlier_one_left(
    old_server: tuple[Server, dict[str, Any]],
) -> None:
    server, recorded = old_server
    kms = server.client()
    keys = recorded["keys"]
    for name, want in keys.items():
        meta = kms.describe_key(KeyId=want["KeyId"])["KeyMetadata"]
        assert (meta["Arn"], meta["KeySpec"], meta["KeyUsage"], meta["KeyState"]) == (
            want["Arn"],
            want["KeySpec"],
            want["KeyUsage"],
            want["KeyState"],
        ), name
        aliases = kms.list_aliases(KeyId=want["KeyId"])["Aliases"]
        assert sorted(a["AliasName"] for a in aliases) == want["Aliases"], name
        tags = kms.list_resource_tags(KeyId=want["KeyId"])["Tags"]
        assert {t["TagKey"]: t["TagValue"] for t in tags} == want["Tags"], name
        if "PolicySid" in want:
            policy = json.loads(kms.get_key_policy(KeyId=want["KeyId"])["Policy"])
            assert [s["Sid"] for s in policy["Statement"]] == [want["PolicySid"]]
        if "Grants" in want:
            grants = kms.list_grants(KeyId=want["KeyId"])["Grants"]
            assert [{"GrantId": g["GrantId"], "Name": g["Name"]} for g in grants] == want["Grants"]
        if meta["KeyState"] == "Disabled":
            kms.enable_key(KeyId=want["KeyId"])
    checked = 0
    for vector in recorded["vectors"]:
        key = keys[vector["key"]]
        operation = vector["operation"]
        if operation in ("Encrypt", "GenerateDataKey"):
            extra = {
                k: vector[k] for k in ("EncryptionContext", "EncryptionAlgorithm") if k in vector
            }
            if "EncryptionAlgorithm" in extra:
                extra["KeyId"] = key["KeyId"]  # asymmetric ciphertext names no key
            out = kms.decrypt(CiphertextBlob=_b(vector["ciphertext"]), **extra)
            assert out["Plaintext"] == _b(vector["plaintext"]), vector
            assert out["KeyId"] == key["Arn"]
        elif operation == "Sign":
            assert kms.get_public_key(KeyId=key["KeyId"])["PublicKey"] == _b(vector["public_key"])
            verified = kms.verify(
                KeyId=key["KeyId"],
                Message=_b(vector["message"]),
                MessageType="RAW",
                Signature=_b(vector["signature"]),
                SigningAlgorithm=vector["SigningAlgorithm"],
            )
            assert verified["SignatureValid"] is True
            # And the key still signs: its private half survived too.
            kms.sign(
                KeyId=key["KeyId"],
                Message=b"after the upgrade",
                MessageType="RAW",
                SigningAlgorithm=vector["SigningAlgorithm"],
            )
        elif operation == "GenerateMac":
            mac = kms.generate_mac(
                KeyId=key["KeyId"],
                Message=_b(vector["message"]),
                MacAlgorithm=vector["MacAlgorithm"],
            )["Mac"]
            assert mac == _b(vector["mac"])
        else:
            raise AssertionError(f"unknown vector operation {operation}")
        checked += 1
    assert checked == len(recorded["vectors"]) >= 7
    # The old trail, and what this version added to it, verify as one.
    verify = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 problems" in verify.stdout
