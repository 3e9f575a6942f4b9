"""The audit trail: one CloudTrail-shaped event per request, filters, no secrets, and a
hash chain that `strongroom audit verify` checks."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import run_strongroom, start_server, stop_server

from ._support import ACCOUNT, ALL_KMS, REGION, assert_kms_error, audit_events, new_principal

pytestmark = pytest.mark.compat

ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"


def _rid(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def _failed_rid(call: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return _rid(info.value.response), info.value.response["Error"]


def _forms(secret: bytes) -> list[str]:
    return [base64.b64encode(secret).decode(), secret.hex(), secret.hex().upper()]


@pytest.fixture(scope="module")
def trail(server: Any) -> dict[str, Any]:
    """A mix of successful and failed calls by two principals, in two phases."""
    kms = server.client()
    creds = new_principal(server, "alice", policy=ALL_KMS)
    name = creds["name"]
    alice = creds["client"]
    plaintext = f"audit plaintext {uuid.uuid4().hex}".encode()
    context = {"purpose": "audit"}
    t0 = datetime.now(UTC)

    rids: dict[str, str] = {}
    created = kms.create_key(Description="audited")
    rids["CreateKey"] = _rid(created)
    key = created["KeyMetadata"]
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext=context)
    rids["Encrypt"] = _rid(enc)
    blob = enc["CiphertextBlob"]
    rids["Decrypt"] = _rid(kms.decrypt(CiphertextBlob=blob, EncryptionContext=context))
    gdk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    rids["GenerateDataKey"] = _rid(gdk)
    rand = kms.generate_random(NumberOfBytes=32)
    rids["GenerateRandom"] = _rid(rand)
    rids["Decrypt wrong context"], _ = _failed_rid(
        kms.decrypt, CiphertextBlob=blob, EncryptionContext={"x": "y"}
    )
    unknown = "11111111-2222-3333-4444-555555555555"
    rids["DescribeKey unknown"], not_found = _failed_rid(kms.describe_key, KeyId=unknown)
    other = kms.create_key(Description="other")["KeyMetadata"]
    kms.disable_key(KeyId=other["KeyId"])
    rids["Encrypt disabled"], disabled = _failed_rid(
        kms.encrypt, KeyId=other["KeyId"], Plaintext=plaintext
    )
    rids["alice ListKeys"] = _rid(alice.list_keys())
    stranger = server.client(access_key_id="AKIAUNKNOWNUNKNOWN00", secret_access_key="x" * 40)
    rids["unauthenticated ListKeys"], _ = _failed_rid(stranger.list_keys)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    rids["alice Encrypt"] = _rid(alice.encrypt(KeyId=key["Arn"], Plaintext=plaintext))
    rids["DescribeKey"] = _rid(kms.describe_key(KeyId=key["KeyId"]))
    destination = kms.create_key(Description="destination")["KeyMetadata"]
    re_enc = kms.re_encrypt(
        CiphertextBlob=blob, SourceEncryptionContext=context, DestinationKeyId=destination["KeyId"]
    )
    rids["ReEncrypt"] = _rid(re_enc)
    return {
        "key": key,
        "other": other,
        "destination": destination,
        "rids": rids,
        "t0": t0,
        "between": between,
        "plaintext": plaintext,
        "context": context,
        "blobs": [blob, gdk["CiphertextBlob"], re_enc["CiphertextBlob"]],
        "secrets": [plaintext, gdk["Plaintext"], rand["Plaintext"]],
        "secret_keys": [server.secret_access_key, creds["SecretAccessKey"]],
        "alice": creds | {"Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}"},
        "not_found": not_found,
        "disabled": disabled,
    }


@pytest.fixture(scope="module")
def output(server: Any, trail: dict[str, Any]) -> str:
    """What ``strongroom audit events --since <start of the trail>`` prints."""
    return audit_events(server, "--since", trail["t0"].isoformat())[0]


@pytest.fixture(scope="module")
def events(output: str) -> dict[str, dict[str, Any]]:
    """Every event of the trail, by request id."""
    by_id: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        event = json.loads(line)
        assert event["requestID"] not in by_id, "one event per request"
        by_id[event["requestID"]] = event
    return by_id


def test_every_request_has_an_event_with_the_request_id_the_client_saw(
    trail: dict[str, Any], events: dict[str, dict[str, Any]]
) -> None:
    names = {
        label: label.split()[1] if label.startswith(("alice", "unauth")) else label.split()[0]
        for label in trail["rids"]
    }
    for label, rid in trail["rids"].items():
        assert rid in events, label
        assert events[rid]["eventName"] == names[label], label


def test_event_has_cloudtrail_shape(
    server: Any, trail: dict[str, Any], events: dict[str, dict[str, Any]]
) -> None:
    event = events[trail["rids"]["Encrypt"]]
    when = datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert trail["t0"] - timedelta(seconds=2) <= when <= datetime.now(UTC)
    assert event["eventSource"] == "kms.amazonaws.com"
    assert event["eventName"] == "Encrypt"
    assert event["awsRegion"] == REGION
    identity = event["userIdentity"]
    assert identity["arn"] == ADMIN_ARN
    assert identity["accountId"] == ACCOUNT
    assert identity["accessKeyId"] == server.access_key_id
    assert identity["type"] == "IAMUser"
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["userAgent"].startswith("Boto3/")
    assert event["requestParameters"]["keyId"] == trail["key"]["KeyId"]
    assert event["requestParameters"]["encryptionContext"] == trail["context"]
    assert "responseElements" in event
    assert str(uuid.UUID(event["eventID"])) == event["eventID"]
    assert {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": trail["key"]["Arn"]} in event[
        "resources"
    ]
    assert "errorCode" not in event and "errorMessage" not in event
    assert len({e["eventID"] for e in events.values()}) == len(events)


def test_failed_requests_have_error_code_and_message(
    trail: dict[str, Any], events: dict[str, dict[str, Any]]
) -> None:
    rids = trail["rids"]
    wrong_context = events[rids["Decrypt wrong context"]]
    assert wrong_context["errorCode"] == "InvalidCiphertextException"
    assert wrong_context["errorMessage"] == ""
    missing = events[rids["DescribeKey unknown"]]
    assert missing["errorCode"] == "NotFoundException"
    assert missing["errorMessage"] == trail["not_found"]["Message"]
    disabled = events[rids["Encrypt disabled"]]
    assert disabled["errorCode"] == "DisabledException"
    assert disabled["errorMessage"] == f"{trail['other']['Arn']} is disabled."
    assert {
        "accountId": ACCOUNT,
        "type": "AWS::KMS::Key",
        "ARN": trail["other"]["Arn"],
    } in disabled["resources"]
    for label in ("Encrypt", "Decrypt", "GenerateDataKey", "GenerateRandom", "CreateKey"):
        assert "errorCode" not in events[rids[label]], label


def test_events_of_another_principal_name_it(
    trail: dict[str, Any], events: dict[str, dict[str, Any]]
) -> None:
    event = events[trail["rids"]["alice Encrypt"]]
    assert event["userIdentity"]["arn"] == trail["alice"]["Arn"]
    assert event["userIdentity"]["accessKeyId"] == trail["alice"]["AccessKeyId"]


def test_no_event_contains_plaintext_ciphertext_data_keys_or_secret_keys(
    trail: dict[str, Any], output: str, events: dict[str, dict[str, Any]]
) -> None:
    text = output
    assert len(events) >= len(trail["rids"])
    for secret in trail["secrets"]:
        for form in _forms(secret):
            assert form not in text
    assert trail["plaintext"].decode() not in text
    for blob in trail["blobs"]:
        for form in _forms(blob):
            assert form not in text
    for secret_key in trail["secret_keys"]:
        assert secret_key not in text


def test_filter_by_event_name(server: Any, trail: dict[str, Any]) -> None:
    _, found = audit_events(
        server, "--event-name", "GenerateDataKey", "--since", trail["t0"].isoformat()
    )
    assert found and {e["eventName"] for e in found} == {"GenerateDataKey"}
    assert trail["rids"]["GenerateDataKey"] in {e["requestID"] for e in found}


def test_filter_by_key(server: Any, trail: dict[str, Any]) -> None:
    _, found = audit_events(server, "--key", trail["key"]["Arn"])
    rids = {e["requestID"] for e in found}
    for label in (
        "CreateKey",
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "Decrypt wrong context",
        "alice Encrypt",
    ):
        assert trail["rids"][label] in rids, label
    assert trail["rids"]["Encrypt disabled"] not in rids
    assert trail["rids"]["GenerateRandom"] not in rids
    for event in found:
        assert trail["key"]["Arn"] in {r["ARN"] for r in event["resources"]}


def test_filter_by_key_finds_re_encrypt_into_the_key(server: Any, trail: dict[str, Any]) -> None:
    _, found = audit_events(server, "--key", trail["destination"]["Arn"])
    assert trail["rids"]["ReEncrypt"] in {e["requestID"] for e in found}


def test_filter_by_principal(server: Any, trail: dict[str, Any]) -> None:
    _, found = audit_events(server, "--principal", trail["alice"]["Arn"])
    assert {e["requestID"] for e in found} == {
        trail["rids"]["alice ListKeys"],
        trail["rids"]["alice Encrypt"],
    }


def test_filter_by_since(
    server: Any, trail: dict[str, Any], events: dict[str, dict[str, Any]]
) -> None:
    _, later = audit_events(server, "--since", trail["between"].isoformat())
    later_ids = {e["requestID"] for e in later}
    for label in ("alice Encrypt", "DescribeKey", "ReEncrypt"):
        assert trail["rids"][label] in later_ids, label
    for label in ("CreateKey", "Encrypt", "alice ListKeys"):
        assert trail["rids"][label] in events and trail["rids"][label] not in later_ids, label


def test_audit_verify_passes_on_an_untouched_trail(server: Any, trail: dict[str, Any]) -> None:
    out = run_strongroom(["audit", "verify", *server.storage_args()], check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 problems" in out.stdout


def test_unauthenticated_request_is_audited_without_identity(
    trail: dict[str, Any], events: dict[str, dict[str, Any]]
) -> None:
    event = events[trail["rids"]["unauthenticated ListKeys"]]
    assert event["errorCode"] == "UnrecognizedClientException"
    assert not event["userIdentity"]


# -- tampering --------------------------------------------------------------------------


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data")
    yield server
    stop_server(server)


def _verify(server: Any) -> subprocess.CompletedProcess[str]:
    return run_strongroom(["audit", "verify", "--data-dir", str(server.data_dir)], check=False)


def test_audit_verify_fails_after_a_row_is_edited_or_removed(own: Any) -> None:
    kms = own.client()
    key = kms.create_key()["KeyMetadata"]
    for i in range(3):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=f"row {i}".encode())
    assert_kms_error("NotFoundException", kms.describe_key, KeyId="alias/none")
    assert _verify(own).returncode == 0
    stop_server(own)  # the trail is at rest; nothing else writes to it

    (segment,) = (own.data_dir / "audit").glob("*.log")
    original = segment.read_bytes()
    lines = original.splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if b'"eventName":"Encrypt"' in line)
    edited = lines[n].replace(b'"awsRegion":"us-east-1"', b'"awsRegion":"us-west-2"')
    assert edited != lines[n]
    segment.write_bytes(b"".join([*lines[:n], edited, *lines[n + 1 :]]))
    result = _verify(own)
    assert result.returncode == 1, result.stdout
    assert "problems" in result.stdout and "0 problems" not in result.stdout

    segment.write_bytes(b"".join([*lines[:n], *lines[n + 1 :]]))  # remove the line instead
    assert _verify(own).returncode == 1
    segment.write_bytes(original)  # and the untouched trail verifies again
    assert _verify(own).returncode == 0


def test_concurrent_requests_are_each_audited_once_in_a_chain_that_verifies(own: Any) -> None:
    # Lone requests write their own event, concurrent ones share group commits: every
    # request the clients saw answered must be in the trail, once, and the chain intact.
    key = own.client().create_key()["KeyMetadata"]["KeyId"]

    def calls(_: int) -> list[str]:
        kms = own.client()
        return [_rid(kms.encrypt(KeyId=key, Plaintext=b"x")) for _ in range(15)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        rids = [rid for batch in pool.map(calls, range(8)) for rid in batch]
    rids.append(_rid(own.client().describe_key(KeyId=key)))  # and a lone one after them
    assert _verify(own).returncode == 0
    _, found = audit_events(own)
    seen = [e["requestID"] for e in found]
    assert len(seen) == len(set(seen))
    assert set(rids) <= set(seen)


def _claiming(client: Any, address: str) -> Any:
    """``client``, with every request claiming to come from ``address`` through a proxy."""

    def add(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = address
        request.headers["Forwarded"] = f"for={address}"
        request.headers["X-Real-IP"] = address

    client.meta.events.register("before-sign.kms.*", add)
    return client


def test_a_client_cannot_choose_its_source_address_with_forwarding_headers(own: Any) -> None:
    # aws:SourceIp and the audit's sourceIPAddress are the connection's address: a client on
    # 127.0.0.1 claiming another one in X-Forwarded-For / Forwarded gets neither.
    only_from_ten = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }
        ],
    }
    key = own.client().create_key()["KeyMetadata"]["KeyId"]
    user = new_principal(own, "forwarded", policy=only_from_ten)
    claims = _claiming(user["client"], "10.1.2.3")
    assert_kms_error("AccessDeniedException", claims.encrypt, KeyId=key, Plaintext=b"x")

    rid = _rid(_claiming(own.client(), "10.1.2.3").encrypt(KeyId=key, Plaintext=b"x"))
    _, found = audit_events(own, "--event-name", "Encrypt")
    (event,) = [e for e in found if e["requestID"] == rid]
    assert event["sourceIPAddress"] == "127.0.0.1"
