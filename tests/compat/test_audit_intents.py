"""A request that changes state leaves its intent in the audit trail before it runs, then its
event; a request that only uses a key (Encrypt) leaves its event alone. ``audit events``
prints intents only when asked, marked as intents; ``audit verify`` checks them with the
chain; ``audit export`` leaves them out of the CloudTrail files."""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import Server, run_in_process, start_server, stop_server

from ._crash import kill_group, start_detached
from ._support import audit_events

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A stopped server's trail after CreateKey, TagResource, Encrypt and PutParameter (a
    SecureString, whose KMS call the request makes on the caller's behalf); the request ids."""
    server = start_server(tmp_path_factory.mktemp("intents") / "data")
    try:
        kms, ssm = server.client(), server.client("ssm")
        created = kms.create_key(Description="intended")
        key_id = created["KeyMetadata"]["KeyId"]
        tagged = kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "t", "TagValue": "v"}])
        encrypted = kms.encrypt(KeyId=key_id, Plaintext=b"secret")
        put = ssm.put_parameter(Name="/intent/pw", Value="hunter2", Type="SecureString")
    finally:
        stop_server(server)
    ids = {
        name: response["ResponseMetadata"]["RequestId"]
        for name, response in (
            ("CreateKey", created),
            ("TagResource", tagged),
            ("Encrypt", encrypted),
            ("PutParameter", put),
        )
    }
    yield server, ids


def _by_request(records: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [r for r in records if r["requestID"] == request_id]


def test_a_change_leaves_its_intent_then_its_event(made: tuple[Server, dict[str, str]]) -> None:
    server, ids = made
    _, records = audit_events(server, "--intents")
    for name in ("CreateKey", "TagResource", "PutParameter"):
        intent, event = _by_request(records, ids[name])  # in this order
        assert intent["recordType"] == "Intent" and "recordType" not in event, name
        assert intent["eventName"] == event["eventName"] == name
        assert intent["userIdentity"] == event["userIdentity"]
        assert intent["requestParameters"] == event["requestParameters"]
        assert "eventID" not in intent and "responseElements" not in intent
    created = _by_request(records, ids["CreateKey"])[0]
    assert created["requestParameters"]["description"] == "intended"
    put = _by_request(records, ids["PutParameter"])[0]
    assert put["requestParameters"]["value"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert "hunter2" not in json.dumps(records)


def test_encrypt_writes_no_intent(made: tuple[Server, dict[str, str]]) -> None:
    server, ids = made
    _, records = audit_events(server, "--intents")
    (event,) = _by_request(records, ids["Encrypt"])
    assert event["eventName"] == "Encrypt" and "recordType" not in event


def test_audit_events_prints_no_intent_unless_asked(made: tuple[Server, dict[str, str]]) -> None:
    server, ids = made
    _, events = audit_events(server)
    assert all("recordType" not in e for e in events)
    for request_id in ids.values():
        assert len(_by_request(events, request_id)) == 1
    _, intents = audit_events(server, "--intents", "--event-name", "TagResource")
    assert [r.get("recordType") for r in intents] == ["Intent", None]


def test_the_trail_with_its_intents_verifies(made: tuple[Server, dict[str, str]]) -> None:
    server, _ = made
    out = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    assert out.returncode == 0, out.stdout
    summary = out.stdout.strip().splitlines()[-1]
    assert " events (and " in summary and " intent records) checked " in summary, summary
    assert summary.endswith(" 0 problems"), summary


def test_export_writes_events_only(made: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, ids = made
    out = run_in_process(
        ["audit", "export", *server.storage_args(), "--output", str(tmp_path / "ct")]
    )
    assert out.returncode == 0
    exported = [
        record
        for path in (tmp_path / "ct").rglob("*.json.gz")
        for record in json.loads(gzip.decompress(path.read_bytes()))["Records"]
    ]
    assert all("recordType" not in r for r in exported)
    for request_id in ids.values():
        assert len(_by_request(exported, request_id)) == 1


# -- audit unmatched: intents that no event follows ---------------------------------------


def _unmatched(server: Server, *options: str) -> subprocess.CompletedProcess[str]:
    return run_in_process(["audit", "unmatched", *server.storage_args(), *options], check=False)


def test_unmatched_finds_nothing_on_a_clean_trail_with_a_refused_request(
    made: tuple[Server, dict[str, str]],
) -> None:
    server, _ = made
    out = _unmatched(server, "--older-than", "0")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("0 unmatched of 3 intent records in "), out.stdout


def test_unmatched_finds_the_intent_of_a_request_killed_before_its_event(
    tmp_path: Path,
) -> None:
    """A TagResource waits on the database (another connection holds SQLite's write lock)
    after its intent was made durable; the server is killed (-9) then: its intent has no
    event. A refused request's intent (its event has the error) is not listed."""
    server = start_detached(tmp_path / "data", None)
    try:
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        with pytest.raises(ClientError, match="NotFoundException"):
            kms.schedule_key_deletion(KeyId="1234abcd-12ab-34cd-56ef-1234567890ab")
        assert _unmatched(server, "--older-than", "0").returncode == 0
        lock = sqlite3.connect(server.data_dir / "strongroom.db", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # the server's writes wait (up to 5 s, then fail)
        tagging = threading.Thread(
            target=_quietly,
            args=(kms.tag_resource,),
            kwargs={"KeyId": key_id, "Tags": [{"TagKey": "lost", "TagValue": "v"}]},
            daemon=True,
        )
        tagging.start()
        intent = _eventually_intent(server, "TagResource")
        # In flight on a running server: younger than the grace, counted apart.
        young = _unmatched(server)
        assert young.returncode == 0, young.stdout
        assert "1 younger than 60 s left out (perhaps in flight)" in young.stdout, young.stdout
        kill_group(server.process)
        lock.rollback()
        lock.close()
    finally:
        kill_group(server.process)
    out = _unmatched(server, "--older-than", "0")
    assert out.returncode == 1, out.stdout + out.stderr
    line, summary = out.stdout.splitlines()
    when, request_id, operation, caller, resource, where = line.split(" ")
    assert (request_id, operation, resource) == (intent["requestID"], "TagResource", key_id)
    assert caller == "arn:aws:iam::111122223333:user/admin" and when.endswith("Z")
    assert where.rsplit(":", 1)[1].isdigit()
    assert summary.startswith("1 unmatched of 3 intent records in "), summary
    as_json = _unmatched(server, "--older-than", "0", "--json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [intent]
    assert as_json.stderr.startswith("1 unmatched of 3 "), as_json.stderr


def _quietly(call: Any, **kwargs: Any) -> None:
    with contextlib.suppress(BotoCoreError, ClientError):  # the server dies under it
        call(**kwargs)


def _eventually_intent(server: Server, operation: str) -> dict[str, Any]:
    deadline = time.monotonic() + 4  # before the server's database wait (5 s) gives up
    while time.monotonic() < deadline:
        _, records = audit_events(server, "--intents", "--event-name", operation)
        if records and records[-1].get("recordType") == "Intent":
            return records[-1]
        time.sleep(0.02)
    raise AssertionError(f"no intent of {operation} in the trail")
