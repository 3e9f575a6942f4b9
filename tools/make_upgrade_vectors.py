"""Make upgrade vectors: what this version of Strongroom leaves on disk, for every later
version to open (``tests/compat/test_upgrade_vectors.py``).

Writes, under OUT (e.g. ``tests/vectors/v1``):

* ``sqlite/data/``: a data directory (SQLite database, root key file, credentials, audit
  segments) a server of this version made and then stopped cleanly;
* ``postgresql/dump.sql``: ``pg_dump`` (plain SQL) of a PostgreSQL database a server of
  this version made, and ``postgresql/data/``: that server's data directory (root key
  file, credentials, audit segments);
* ``<backend>/vectors.json``: the keys (ids, specs, aliases, tags, policy, grant, state)
  and the outputs of Encrypt, GenerateDataKey, Sign and GenerateMac with their inputs.

The root key files are test fixtures: they protect nothing but these vectors.

    PYTHONPATH=src python3 tools/make_upgrade_vectors.py tests/vectors/v1 \\
        --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import conftest  # noqa: E402  (the test helpers: the server starter, fresh databases)

ACCOUNT = "111122223333"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
GRANTEE = f"arn:aws:iam::{ACCOUNT}:user/vector-grantee"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def populate(kms: Any) -> dict[str, Any]:
    """A handful of keys of several specs with aliases, tags, a policy, a grant, a
    rotation and a disabled key; returns what ``vectors.json`` records."""
    keys: dict[str, dict[str, Any]] = {}
    vectors: list[dict[str, Any]] = []

    def key(name: str, **create: Any) -> str:
        meta = kms.create_key(
            Description=f"upgrade vector {name}",
            Tags=[{"TagKey": "vector", "TagValue": name}],
            **create,
        )["KeyMetadata"]
        alias = f"alias/vector-{name}"
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        keys[name] = {
            "KeyId": meta["KeyId"],
            "Arn": meta["Arn"],
            "KeySpec": meta["KeySpec"],
            "KeyUsage": meta["KeyUsage"],
            "KeyState": "Enabled",
            "Aliases": [alias],
            "Tags": {"vector": name},
        }
        return str(meta["KeyId"])

    sym = key("symmetric")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "VectorPolicy",
                "Effect": "Allow",
                "Principal": {"AWS": ROOT_ARN},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    kms.put_key_policy(KeyId=sym, PolicyName="default", Policy=json.dumps(policy))
    keys["symmetric"]["PolicySid"] = "VectorPolicy"
    grant = kms.create_grant(
        KeyId=sym, GranteePrincipal=GRANTEE, Operations=["Decrypt", "Encrypt"], Name="vector"
    )
    keys["symmetric"]["Grants"] = [{"GrantId": grant["GrantId"], "Name": "vector"}]
    context = {"purpose": "upgrade-vector"}

    def encrypt(name: str, key_id: str, **extra: Any) -> None:
        plaintext = os.urandom(24)
        blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext, **extra)["CiphertextBlob"]
        vectors.append(
            {
                "operation": "Encrypt",
                "key": name,
                "plaintext": _b64(plaintext),
                "ciphertext": _b64(blob),
                **extra,
            }
        )

    encrypt("symmetric", sym, EncryptionContext=context)
    kms.rotate_key_on_demand(KeyId=sym)  # a second material version: both must decrypt
    encrypt("symmetric", sym, EncryptionContext=context)
    data_key = kms.generate_data_key(KeyId=sym, KeySpec="AES_256")
    vectors.append(
        {
            "operation": "GenerateDataKey",
            "key": "symmetric",
            "plaintext": _b64(data_key["Plaintext"]),
            "ciphertext": _b64(data_key["CiphertextBlob"]),
        }
    )

    rsa = key("rsa", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    encrypt("rsa", rsa, EncryptionAlgorithm="RSAES_OAEP_SHA_256")

    for name, spec, algorithm in (
        ("ecdsa", "ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ed25519", "ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
    ):
        key_id = key(name, KeySpec=spec, KeyUsage="SIGN_VERIFY")
        message = f"upgrade vector {name}".encode()
        signature = kms.sign(
            KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm=algorithm
        )["Signature"]
        public = kms.get_public_key(KeyId=key_id)["PublicKey"]
        vectors.append(
            {
                "operation": "Sign",
                "key": name,
                "message": _b64(message),
                "signature": _b64(signature),
                "SigningAlgorithm": algorithm,
                "public_key": _b64(public),
            }
        )

    hmac = key("hmac", KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    message = b"upgrade vector hmac"
    mac = kms.generate_mac(KeyId=hmac, Message=message, MacAlgorithm="HMAC_SHA_256")["Mac"]
    vectors.append(
        {
            "operation": "GenerateMac",
            "key": "hmac",
            "message": _b64(message),
            "mac": _b64(mac),
            "MacAlgorithm": "HMAC_SHA_256",
        }
    )

    disabled = key("disabled")
    encrypt("disabled", disabled)
    kms.disable_key(KeyId=disabled)
    keys["disabled"]["KeyState"] = "Disabled"
    return {"keys": keys, "vectors": vectors}


def _data_files(data_dir: Path, out: Path, *, database: bool) -> None:
    """Copy the data directory, without lock files (and without the SQLite database when
    the database is PostgreSQL)."""

    def ignore(_dir: str, names: list[str]) -> list[str]:
        return [
            n
            for n in names
            if n.endswith(".lock") or (not database and n.startswith("strongroom.db"))
        ]

    shutil.copytree(data_dir, out, ignore=ignore)


def make(out: Path, database_url: str | None, work: Path) -> None:
    """One backend's vectors: a server on fresh storage, populated, stopped cleanly."""
    data_dir = work / "data"
    server = conftest.start_server(data_dir, database_url)
    try:
        recorded = populate(server.client())
    finally:
        conftest.stop_server(server)
    out.mkdir(parents=True)
    _data_files(data_dir, out / "data", database=database_url is None)
    if database_url is not None:
        conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", "--dbname", conninfo],
            capture_output=True,
            text=True,
            check=True,
        )
        (out / "dump.sql").write_text(dump.stdout)
    (out / "vectors.json").write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to make, e.g. tests/vectors/v1")
    parser.add_argument("--postgres-url", default=os.environ.get(conftest.POSTGRES_ENV))
    args = parser.parse_args()
    if args.out.exists():
        parser.error(f"{args.out} exists: vectors are made once, never remade in place")
    if not args.postgres_url:
        parser.error(f"--postgres-url (or {conftest.POSTGRES_ENV}) is needed for the dump")
    with tempfile.TemporaryDirectory(prefix="upgrade-vectors-") as tmp:
        make(args.out / "sqlite", None, Path(tmp) / "sqlite")
        url, name = conftest._fresh_postgres_database(args.postgres_url)
        try:
            make(args.out / "postgresql", url, Path(tmp) / "postgresql")
        finally:
            conftest._drop_postgres_database(args.postgres_url, name)
    print(f"upgrade vectors written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
