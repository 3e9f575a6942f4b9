"""Helpers shared by the compat tests: AWS error assertions and unique names."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import run_in_process

ACCOUNT = "111122223333"
REGION = "us-east-1"
OTHER_REGION = "eu-west-1"

# The four ways a request can name a key (AWS KMS Developer Guide, "Key identifiers").
FORMS = ("key id", "key ARN", "alias name", "alias ARN")
# Operations whose KeyId accepts only a key id or a key ARN.
KEY_ONLY_FORMS = ("key id", "key ARN")


def assert_kms_error(
    code: str, call: Callable[..., Any], /, *, message: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run ``call(**kwargs)``; assert it fails with AWS error ``code`` (and exact ``message``).

    Returns the whole error response, ResponseMetadata included."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response: dict[str, Any] = info.value.response
    error = response["Error"]
    assert error["Code"] == code, error
    if message is not None:
        assert error["Message"] == message, error
    return response


def stored_files(directory: Path) -> dict[Path, bytes]:
    """Every file under ``directory`` as it is stored now, ``.gz`` files decompressed. A
    running server compresses closed audit segments (an admin command's among them) and
    SQLite drops its journals, so a file listed may be gone when it is read: then the
    listing is taken again."""
    for _ in range(100):
        try:
            return {path: _stored(path) for path in sorted(directory.rglob("*")) if path.is_file()}
        except FileNotFoundError:
            time.sleep(0.01)
    raise AssertionError(f"the files of {directory} kept changing while they were read")


def _stored(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


ALL_KMS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
}


def new_principal(
    server: Any,
    prefix: str,
    *,
    account: str = ACCOUNT,
    policy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new user in ``account`` with ``policy`` as its inline identity policy (none when
    None) and an access key: {"arn", "name", "client", "AccessKeyId", ...}. (Roles have no
    access keys: their sessions' credentials come from assume-role.)"""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    server.admin("create-user", name, "--in-account", account)
    if policy is not None:
        put_policy(server, "put-user-policy", name, policy, "--in-account", account)
    arn = f"arn:aws:iam::{account}:user/{name}"
    creds = json.loads(server.admin("create-access-key", arn).stdout)
    client = make_client(server.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    return {"arn": arn, "name": name, "account": account, "client": client, **creds}


def audit_events(server: Any, *filters: str) -> tuple[str, list[dict[str, Any]]]:
    """What ``strongroom audit events`` prints for ``server``'s trail with ``filters``, and
    its events."""
    out = run_in_process(
        ["audit", "events", *server.storage_args(), "--limit", "1000000", *filters]
    )
    return out.stdout, [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def job_records(server: Any, event_name: str) -> list[dict[str, Any]]:
    """The intents and events named ``event_name`` in ``server``'s trail, in its order."""
    _, records = audit_events(server, "--intents", "--event-name", event_name)
    return records


def service_change(server: Any, event_name: str, key_arn: str) -> dict[str, Any]:
    """The one event a scheduled job wrote for its change ``event_name`` of ``key_arn``,
    after checking it and its intent: CloudTrail's AwsServiceEvent of a change AWS KMS
    makes on its own (ct-delete-key, ct-rotatekey, ct-deleteexpiredkeymaterial), made by
    "AWS Internal", and before it the intent of the same request id."""
    records = job_records(server, event_name)
    assert len(records) == 2, records
    intent, event = records
    _, _, _, region, account, _ = key_arn.split(":", 5)
    identity = {"accountId": account, "invokedBy": "AWS Internal"}
    assert intent["recordType"] == "Intent" and intent["requestID"] == event["requestID"]
    assert (intent["userIdentity"], intent["requestParameters"]) == (identity, {"keyId": key_arn})
    assert "recordType" not in event
    assert (event["eventType"], event["eventSource"]) == ("AwsServiceEvent", "kms.amazonaws.com")
    assert event["userIdentity"] == identity
    assert (event["sourceIPAddress"], event["userAgent"]) == ("AWS Internal", "AWS Internal")
    assert event["requestParameters"] is None
    assert event["resources"] == [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}]
    assert (event["readOnly"], event["recipientAccountId"]) == (False, account)
    assert event["awsRegion"] == region
    return event


def put_policy(server: Any, command: str, name: str, policy: dict[str, Any], *extra: str) -> None:
    """``strongroom admin COMMAND NAME FILE EXTRA...`` with ``policy`` written to FILE
    (``put-user-policy``, ``put-role-policy``, ...)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(policy, f)
    try:
        server.admin(command, name, f.name, *extra)
    finally:
        os.unlink(f.name)


def eventually(check: Callable[[], Any], seconds: float = 5.0) -> Any:
    """Retry ``check`` until it passes and return its result: changes made by the admin
    command reach a running server with its next change poll."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except (AssertionError, ClientError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def unique_alias(prefix: str = "t") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


def key_forms(key: dict[str, Any], alias_name: str) -> dict[str, str]:
    """The four identifiers of ``key`` (its KeyMetadata), given one of its alias names."""
    arn = key["Arn"]
    alias_arn = arn.rsplit(":", 1)[0] + ":" + alias_name
    return {
        "key id": key["KeyId"],
        "key ARN": arn,
        "alias name": alias_name,
        "alias ARN": alias_arn,
    }


def make_client(
    endpoint: str,
    access_key_id: str,
    secret_access_key: str,
    region: str = REGION,
    *,
    validate: bool = True,
) -> Any:
    """A boto3 KMS client with explicit credentials and no retries; ``validate=False`` turns
    off botocore's own parameter checks so out-of-range values reach the server."""
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(retries={"max_attempts": 0}, parameter_validation=validate),
    )


# -- key specs (CreateKeyRequest.KeyUsage doc of the KMS model; AWS KMS Developer Guide,
# "Key spec reference"), written out here so the server is held to AWS, not to itself.

RSA_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")
NIST_EC_SPECS = ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521")
HMAC_SPECS = ("HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512")
ML_DSA_SPECS = ("ML_DSA_44", "ML_DSA_65", "ML_DSA_87")
# ML_KEM_512 is in the model too, refused by this server (pyca/cryptography has no ML-KEM-512).
ML_KEM_SPECS = ("ML_KEM_768", "ML_KEM_1024")

RSA_SIGNING = [
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
]
SIGNING_ALGORITHMS: dict[str, list[str]] = {
    **{spec: RSA_SIGNING for spec in RSA_SPECS},
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_EDWARDS25519": ["ED25519_SHA_512", "ED25519_PH_SHA_512"],
    **{spec: ["ML_DSA_SHAKE_256"] for spec in ML_DSA_SPECS},
}
"""SigningAlgorithms of every SIGN_VERIFY key spec, in the order DescribeKey lists them."""

# Every (KeySpec, KeyUsage) CreateKey accepts, with the algorithm member DescribeKey shows.
KEY_TYPES: dict[tuple[str, str], tuple[str, list[str]]] = {
    **{
        (spec, "ENCRYPT_DECRYPT"): (
            "EncryptionAlgorithms",
            ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        )
        for spec in RSA_SPECS
    },
    **{
        (spec, "SIGN_VERIFY"): ("SigningAlgorithms", algs)
        for spec, algs in SIGNING_ALGORITHMS.items()
    },
    **{(spec, "KEY_AGREEMENT"): ("KeyAgreementAlgorithms", ["ECDH"]) for spec in NIST_EC_SPECS},
    **{
        (spec, "GENERATE_VERIFY_MAC"): ("MacAlgorithms", [f"HMAC_SHA_{spec[5:]}"])
        for spec in HMAC_SPECS
    },
    **{
        (spec, "ENCAPSULATE_DECAPSULATE"): ("EncapsulationAlgorithms", ["ML_KEM"])
        for spec in ML_KEM_SPECS
    },
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"): ("EncryptionAlgorithms", ["SYMMETRIC_DEFAULT"]),
}

ALGORITHM_MEMBERS = (
    "EncryptionAlgorithms",
    "SigningAlgorithms",
    "MacAlgorithms",
    "KeyAgreementAlgorithms",
    "EncapsulationAlgorithms",
)

RSA_OAEP_LIMITS = {
    ("RSA_2048", "RSAES_OAEP_SHA_1"): 214,
    ("RSA_3072", "RSAES_OAEP_SHA_1"): 342,
    ("RSA_4096", "RSAES_OAEP_SHA_1"): 470,
    ("RSA_2048", "RSAES_OAEP_SHA_256"): 190,
    ("RSA_3072", "RSAES_OAEP_SHA_256"): 318,
    ("RSA_4096", "RSAES_OAEP_SHA_256"): 446,
}
"""Largest Encrypt plaintext per RSA key spec and algorithm (Encrypt doc)."""

DRY_RUN = "The request would have succeeded, but the DryRun option is set."


def usage_error(arn: str, usage: str, operation: str) -> str:
    """AWS's InvalidKeyUsageException text (recorded against AWS, LocalStack snapshots)."""
    return f"{arn} key usage is {usage} which is not valid for {operation}."


class KeyMaker:
    """Keys of each (KeySpec, KeyUsage), made on first use and then shared: RSA_4096 takes
    a while to generate. Tests that change a key (disable it, ...) make their own."""

    def __init__(self, kms: Any) -> None:
        self._kms = kms
        self._made: dict[tuple[str, str], dict[str, Any]] = {}

    def __call__(self, spec: str, usage: str) -> dict[str, Any]:
        """The KeyMetadata CreateKey returned for the shared key of ``spec`` and ``usage``."""
        if (spec, usage) not in self._made:
            self._made[(spec, usage)] = self._kms.create_key(
                KeySpec=spec, KeyUsage=usage, Description=f"shared {spec} {usage}"
            )["KeyMetadata"]
        return self._made[(spec, usage)]


def describe_store(kms: Any, store_id: str) -> dict[str, Any]:
    """The DescribeCustomKeyStores entry of one custom key store."""
    stores = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"]
    assert len(stores) == 1
    return stores[0]  # type: ignore[no-any-return]


def store_state_is(kms: Any, store_id: str, state: str) -> dict[str, Any]:
    """The store's entry once its ConnectionState is ``state`` (``eventually``)."""

    def check() -> dict[str, Any]:
        entry = describe_store(kms, store_id)
        assert entry["ConnectionState"] == state, entry
        return entry

    return eventually(check)  # type: ignore[no-any-return]


def worker_pids(server: Any) -> set[int]:
    """The worker processes of a server started with --workers N: the children of the fork
    server (``server/workers.py``) that the supervisor started."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))

    def is_fork_server(pid: int) -> bool:
        try:
            return b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    servers = [pid for pid in children.get(server.process.pid, []) if is_fork_server(pid)]
    return {pid for fork_server in servers for pid in children.get(fork_server, [])}
