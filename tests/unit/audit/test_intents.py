"""Intent records in the trail: their format and redaction, and every reader of the trail
(the trail reader, verify, CloudTrail export, the console) skipping them or showing them as
intents, never as events; the chain and the digests cover them as they cover events."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit.events import (
    HIDDEN_VALUE,
    SSM_EVENT_SOURCE,
    build_event,
    build_intent,
)
from strongroom.audit.export import export_cloudtrail
from strongroom.audit.lifecycle import Lifecycle
from strongroom.audit.log import AuditLog
from strongroom.audit.segments import INTENT_PREFIX, read_segment, segments
from strongroom.audit.signing import load_signer
from strongroom.audit.trail import TrailReader
from strongroom.audit.verify import verify
from strongroom.console.trail import EventFilter, Trail, Viewer
from strongroom.keystores.filekey import FileRootKey

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
ARN = f"arn:aws:iam::{ACCOUNT}:root"
IDENTITY = {"type": "Root", "principalId": ACCOUNT, "arn": ARN, "accountId": ACCOUNT}
WHEN = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def _intent(request_id: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return build_intent(
        event_time=WHEN,
        event_name=extra.pop("event_name", "TagResource"),
        region="us-east-1",
        request_id=request_id,
        source_ip="127.0.0.1",
        user_agent="test",
        user_identity=IDENTITY,
        request_parameters=params,
        **extra,
    )


def _event(request_id: str, params: dict[str, Any], name: str = "TagResource") -> dict[str, Any]:
    return build_event(
        event_time=WHEN,
        event_name=name,
        region="us-east-1",
        request_id=request_id,
        source_ip="127.0.0.1",
        user_agent="test",
        user_identity=IDENTITY,
        request_parameters=params,
        response_elements=None,
        resources=[f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"],
        error_code=None,
        error_message=None,
    )


PARAMS = {"KeyId": "k", "Tags": [{"TagKey": "a", "TagValue": "b"}], "GrantTokens": ["secret"]}


def test_an_intent_says_who_runs_what_with_the_events_redaction_and_is_no_event() -> None:
    intent, event = _intent("r1", PARAMS), _event("r1", PARAMS)
    assert orjson.dumps(intent).startswith(INTENT_PREFIX)
    assert not orjson.dumps(event).startswith(INTENT_PREFIX)
    assert intent["recordType"] == "Intent"
    for shared in ("eventName", "requestID", "userIdentity", "requestParameters", "awsRegion"):
        assert intent[shared] == event[shared], shared
    assert intent["requestParameters"] == {"keyId": "k", "tags": [{"TagKey": "a", "TagValue": "b"}]}
    # Nothing that would pass it off as a CloudTrail event of its own.
    assert not {"eventVersion", "eventID", "eventType", "responseElements"} & set(intent)


def test_an_intent_of_put_parameter_hides_the_value_as_its_event_does() -> None:
    intent = _intent(
        "r2",
        {"Name": "/db/password", "Value": "hunter2", "Type": "SecureString"},
        event_name="PutParameter",
        event_source=SSM_EVENT_SOURCE,
    )
    assert intent["requestParameters"]["value"] == HIDDEN_VALUE
    assert b"hunter2" not in orjson.dumps(intent)


def _writer(directory: Path) -> AuditLog:
    root = FileRootKey.create(directory.parent / "root.key")
    audit = AuditLog(
        directory, fsync=True, lifecycle=Lifecycle(), signer=load_signer(directory, root)
    )
    audit.start()
    return audit


def _trail(directory: Path) -> None:
    """Two requests that changed state (intent, then event) and an Encrypt (event only),
    then a clean stop (a final digest)."""
    audit = _writer(directory)

    async def run() -> None:
        for record in (
            _intent("r1", PARAMS),
            _event("r1", PARAMS),
            _event("r2", {"KeyId": "k"}, "Encrypt"),
            _intent("r3", {"KeyId": "k"}, event_name="DisableKey"),
            _event("r3", {"KeyId": "k"}, "DisableKey"),
        ):
            assert audit.commit(record, alone=True) is None

    asyncio.run(run())
    audit.stop()


def test_the_trail_reader_skips_intents_unless_asked(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    _trail(directory)
    plain = [r.event() for r in TrailReader(directory).read()]
    assert [(e["requestID"], e["eventName"]) for e in plain] == [
        ("r1", "TagResource"),
        ("r2", "Encrypt"),
        ("r3", "DisableKey"),
    ]
    assert all("recordType" not in e for e in plain)
    records = TrailReader(directory, intents=True).read()
    assert [(r.is_intent, r.event()["requestID"]) for r in records] == [
        (True, "r1"),
        (False, "r1"),
        (False, "r2"),
        (True, "r3"),
        (False, "r3"),
    ]


def test_verify_covers_intents_with_the_chain_and_counts_them_apart(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    _trail(directory)
    report = verify(directory)
    assert (report.events, report.intents, report.problems) == (3, 2, [])
    # An intent changed afterwards (another principal, say) breaks the chain.
    (path,) = segments(directory)
    data = path.read_bytes()
    assert data.count(ARN.encode()) == 5
    path.write_bytes(data.replace(ARN.encode(), b"arn:aws:iam::111122223333:user/x", 1))
    first = next(read_segment(path))
    assert first.is_intent
    problems = verify(directory).problems
    assert any(f"{path.name} line 1: event does not match its hash" in p for p in problems)


def test_export_leaves_intents_out_and_still_marks_the_segment_exported(tmp_path: Path) -> None:
    directory, output = tmp_path / "audit", tmp_path / "out"
    _trail(directory)
    summary = export_cloudtrail(directory, output, account=ACCOUNT)
    assert (summary.events, summary.segments_marked) == (3, 1)
    exported = [
        record
        for path in summary.files
        for record in orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
    ]
    assert sorted(e["requestID"] for e in exported) == ["r1", "r2", "r3"]
    assert all("recordType" not in e for e in exported)


def test_the_consoles_audit_page_shows_no_intents(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    _trail(directory)
    trail = Trail(directory)
    trail.refresh()
    shown = trail.visible(Viewer(ARN, ACCOUNT), EventFilter(), limit=100)
    assert [e["requestID"] for e in shown] == ["r3", "r2", "r1"]  # newest first
    assert all("recordType" not in e for e in shown)
