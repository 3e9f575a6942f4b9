"""The AWS SDK for JavaScript v3 (@aws-sdk/client-kms and client-sts, pinned in
tests/node/package.json) against the server, unchanged: each test runs one scenario of
tests/node/scenarios.mjs in one node process and checks what the SDK saw."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import REGION, Server

from ._support import ACCOUNT, ALL_KMS, new_principal, put_policy

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
README = Path(__file__).resolve().parents[2] / "README.md"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(NODE is None, reason="node is not installed (Node.js 20 or later)"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules").is_dir(),
        reason="tests/node/node_modules is missing: run `npm ci --prefix tests/node`",
    ),
]

REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The JS SDK's message for an error reply whose message is empty, as AWS's are for a wrong
# encryption context and a signature or MAC that does not verify (the SDK reads
# `message || Message || "UnknownError"`).
SDK_EMPTY_MESSAGE = "UnknownError"


def _creds(principal: dict[str, Any]) -> dict[str, str]:
    return {
        "accessKeyId": principal["AccessKeyId"],
        "secretAccessKey": principal["SecretAccessKey"],
    }


def _scenario(server: Server, name: str, **extra: Any) -> Any:
    """Run scenario ``name`` against ``server`` (JSON input on stdin, JSON result on stdout);
    Uint8Array comes back as bytes and Date as its ISO text in {"$date": ...}."""
    given = {
        "server": {
            "endpoint": server.endpoint,
            "region": REGION,
            "admin": {
                "accessKeyId": server.access_key_id,
                "secretAccessKey": server.secret_access_key,
            },
        },
        **extra,
    }
    return json.loads(_node("scenarios.mjs", name, stdin=json.dumps(given)), object_hook=_bytes)


def _node(*args: str, stdin: str | None = None) -> str:
    """Run node in tests/node with ``args``; what it printed (it must exit 0)."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        env=_node_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _node_env() -> dict[str, str]:
    return {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true",
    }


def _own_account_user(server: Server, prefix: str) -> dict[str, Any]:
    """A user allowed kms:* in an account of its own, which sees only its own keys and
    aliases."""
    account = f"{uuid.uuid4().int % 10**12:012d}"
    server.admin("create-account", account)
    return new_principal(server, prefix, account=account, policy=ALL_KMS)


def _bytes(value: dict[str, Any]) -> Any:
    if value.keys() == {"$bytes"}:
        return base64.b64decode(value["$bytes"])
    return value


def _assert_error(error: dict[str, Any], name: str, *, modeled: bool = True) -> None:
    """The SDK raised error ``name`` (HTTP 400, as AWS KMS answers each error tested here)
    with the request id of the reply's x-amzn-RequestId header in its $metadata, as its
    exception class of that name when ``modeled`` (the KMS model's errors), else as a plain
    KMSServiceException (the common AWS errors the model leaves out, such as
    ValidationException: the SDK treats AWS's replies so too)."""
    assert error["name"] == name, error
    assert error["service"], error
    assert error["modeled"] is modeled, error
    assert error["fault"] == "client", error
    assert error["httpStatusCode"] == 400, error
    assert REQUEST_ID.fullmatch(error["requestId"]), error
    assert error["requestId"] == error["requestIdHeader"], error


def test_js_sdk_creates_describes_lists_and_aliases_keys(server: Server) -> None:
    # ListKeys sees the scenario's three keys and no other.
    owner = _own_account_user(server, "node-owner")
    account = owner["account"]
    seen = _scenario(server, "keys", owner=_creds(owner))
    created, described = seen["created"], seen["described"]
    key_id = created["KeyId"]
    assert created["Arn"] == f"arn:aws:kms:{REGION}:{account}:key/{key_id}"
    assert created["Description"] == "from the JavaScript SDK"
    assert (created["KeySpec"], created["KeyUsage"], created["KeyState"]) == (
        "SYMMETRIC_DEFAULT",
        "ENCRYPT_DECRYPT",
        "Enabled",
    )
    assert set(created["CreationDate"]) == {"$date"}  # a Date, from epoch seconds
    assert described == created
    assert seen["createdMetadata"]["httpStatusCode"] == 200
    assert REQUEST_ID.fullmatch(seen["createdMetadata"]["requestId"])
    assert seen["tags"] == [{"TagKey": "team", "TagValue": "node"}]
    [alias] = seen["aliases"]
    assert alias["AliasName"] == seen["alias"]
    assert alias["AliasArn"] == f"arn:aws:kms:{REGION}:{account}:{seen['alias']}"
    assert alias["TargetKeyId"] == key_id
    assert seen["byAlias"] == key_id
    assert seen["firstPage"] == {"keys": 1, "truncated": True, "marker": "string"}
    assert seen["pages"] == 3
    assert sorted(seen["paged"]) == sorted(seen["all"])
    assert len(seen["all"]) == 3 and key_id in seen["all"]


def test_js_sdk_encrypts_decrypts_and_makes_data_keys_with_uint8array_blobs(
    server: Server,
) -> None:
    seen = _scenario(server, "crypt")
    key_arn, other_arn = seen["key"]["Arn"], seen["other"]["Arn"]
    assert seen["encrypted"] == {
        "keyId": key_arn,
        "algorithm": "SYMMETRIC_DEFAULT",
        "isUint8Array": True,
    }
    assert seen["decrypted"] == {
        "keyId": key_arn,
        "plaintext": "attack at dawn ✓",
        "isUint8Array": True,
    }
    data_key = seen["dataKey"]
    assert data_key["keyId"] == key_arn
    assert len(data_key["plaintext"]) == 32 and data_key["back"] == data_key["plaintext"]
    assert "Plaintext" not in seen["noPlaintext"]["keys"]
    assert len(seen["noPlaintext"]["back"]) == 16
    assert seen["reEncrypted"] == {
        "sourceKeyId": key_arn,
        "keyId": other_arn,
        "plaintext": "attack at dawn ✓",
        "reDecryptedKeyId": other_arn,
    }
    assert len(seen["random"]) == 64


def test_js_sdk_signs_and_verifies_with_an_ecc_key_and_its_public_key(server: Server) -> None:
    seen = _scenario(server, "sign")
    arn = seen["key"]["Arn"]
    assert seen["key"]["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    assert seen["signed"] == {"keyId": arn, "algorithm": "ECDSA_SHA_256"}
    assert seen["verified"] == {"valid": True, "keyId": arn}
    _assert_error(seen["forged"], "KMSInvalidSignatureException")
    assert seen["forged"]["message"] == SDK_EMPTY_MESSAGE
    assert seen["publicKey"] == {
        "keyId": arn,
        "keySpec": "ECC_NIST_P256",
        "keyUsage": "SIGN_VERIFY",
        "signingAlgorithms": ["ECDSA_SHA_256"],
    }
    assert seen["local"] is True  # node:crypto verifies the signature with the public key


def test_js_sdk_generates_and_verifies_macs(server: Server) -> None:
    seen = _scenario(server, "mac")
    arn = seen["key"]["Arn"]
    generated = seen["generated"]
    assert (generated["keyId"], generated["algorithm"]) == (arn, "HMAC_SHA_256")
    assert len(generated["mac"]) == 32
    assert seen["verified"] == {"valid": True, "keyId": arn, "algorithm": "HMAC_SHA_256"}
    _assert_error(seen["forged"], "KMSInvalidMacException")
    assert seen["forged"]["message"] == SDK_EMPTY_MESSAGE


def test_js_sdk_schedules_and_cancels_key_deletion(server: Server) -> None:
    seen = _scenario(server, "deletion")
    arn = seen["key"]["Arn"]
    scheduled = seen["scheduled"]
    assert (scheduled["KeyId"], scheduled["KeyState"]) == (arn, "PendingDeletion")
    assert scheduled["PendingWindowInDays"] == 7
    assert seen["pending"]["KeyState"] == "PendingDeletion"
    assert seen["pending"]["DeletionDate"] == scheduled["DeletionDate"]
    _assert_error(seen["refused"], "KMSInvalidStateException")
    assert seen["refused"]["message"] == f"{arn} is pending deletion."
    assert seen["cancelled"]["KeyId"] == arn
    assert seen["after"]["KeyState"] == "Disabled"
    assert "DeletionDate" not in seen["after"]


def test_js_sdk_raises_kms_errors_with_their_names_statuses_and_request_ids(server: Server) -> None:
    stranger = new_principal(server, "node-stranger")  # no identity policy
    seen = _scenario(server, "errors", stranger=_creds(stranger))
    arn = seen["key"]["Arn"]
    _assert_error(seen["notFound"], "NotFoundException")
    assert seen["notFound"]["message"] == f"Key '{seen['missing']}' does not exist"
    _assert_error(seen["invalidCiphertext"], "InvalidCiphertextException")
    assert seen["invalidCiphertext"]["message"] == SDK_EMPTY_MESSAGE
    _assert_error(seen["validation"], "ValidationException", modeled=False)
    assert seen["validation"]["message"] == (
        "1 validation error detected: Value '2000' at 'numberOfBytes' failed to satisfy "
        "constraint: Member must have value less than or equal to 1024"
    )
    _assert_error(seen["denied"], "AccessDeniedException", modeled=False)
    assert seen["denied"]["message"] == (
        f"User: {stranger['arn']} is not authorized to perform: kms:Encrypt on resource: "
        f"{arn} because no identity-based policy allows the kms:Encrypt action"
    )
    _assert_error(seen["disabled"], "DisabledException")
    assert seen["disabled"]["message"] == f"{arn} is disabled."
    request_ids = [seen[k]["requestId"] for k in ("notFound", "validation", "denied", "disabled")]
    assert len(set(request_ids)) == len(request_ids)


def test_js_sdk_uses_temporary_credentials_from_sts_assume_role(server: Server, kms: Any) -> None:
    role = f"node-role-{uuid.uuid4().hex[:8]}"
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    server.admin("create-role", role)
    put_policy(server, "put-role-policy", role, ALL_KMS)
    may_assume = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}],
    }
    caller = new_principal(server, "node-caller", policy=may_assume)
    key_arn = kms.create_key(Description="for a role session")["KeyMetadata"]["Arn"]
    seen = _scenario(server, "session", caller=_creds(caller), roleArn=role_arn, keyArn=key_arn)
    assert seen["assumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/node-session"
    )
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", seen["accessKeyId"])
    assert set(seen["expiration"]) == {"$date"}
    assert seen["plaintext"] == "session data"
    assert seen["keyState"] == "Enabled"
    _assert_error(seen["withoutToken"], "UnrecognizedClientException", modeled=False)


def test_js_sdk_signatures_cover_its_headers_and_its_clock_skew_correction_works(
    server: Server,
) -> None:
    seen = _scenario(server, "wire")
    assert seen["listed"] == 200
    # The JS SDK signs x-amz-content-sha256 (the server checks it against the body) and its
    # own headers besides the ones botocore signs.
    assert {
        "host",
        "x-amz-date",
        "x-amz-target",
        "content-type",
        "x-amz-content-sha256",
        "x-amz-user-agent",
        "amz-sdk-invocation-id",
        "amz-sdk-request",
    } <= set(seen["signedHeaders"])
    assert re.fullmatch(r"[0-9a-f]{64}", seen["contentSha256"])
    _assert_error(seen["expired"], "InvalidSignatureException", modeled=False)
    assert seen["expired"]["message"].startswith("Signature expired: ")
    # With one retry the SDK takes the server's time from the Date header and succeeds.
    assert seen["corrected"]["httpStatusCode"] == 200
    assert seen["corrected"]["attempts"] == 2


def test_readme_javascript_block_runs_as_written(server: Server) -> None:
    """The README's JS SDK example, its port and credentials swapped in, encrypts under
    alias/demo (of an account of its own: other tests make alias/demo in the main one)."""
    user = _own_account_user(server, "node-readme")
    user["client"].create_alias(
        AliasName="alias/demo", TargetKeyId=user["client"].create_key()["KeyMetadata"]["KeyId"]
    )
    text = README.read_text().split("## Quickstart", 1)[1]
    block = text.split("```js\n", 1)[1].split("```", 1)[0]
    code = (
        block.replace("4599", server.endpoint.rsplit(":", 1)[1])
        .replace('"AKIA..."', json.dumps(user["AccessKeyId"]))
        .replace(
            'secretAccessKey: "..."', f"secretAccessKey: {json.dumps(user['SecretAccessKey'])}"
        )
        + 'console.log(Buffer.from(CiphertextBlob).toString("base64"));\n'
    )
    blob = base64.b64decode(_node("--input-type=module", "-e", code))
    assert user["client"].decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
