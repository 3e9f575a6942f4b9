"""The request pipeline in process (no HTTP server), for both protocols: request ids,
errors on the wire as each protocol writes them, one audit event per request, and the
failures that become KMSInternalException."""

from __future__ import annotations

import asyncio
import configparser
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit.log import read_segment, segments
from strongroom.auth.sigv4 import HttpRequest, sign
from strongroom.domain.errors import NotFoundException
from strongroom.handlers import registry
from strongroom.keystores.base import leave_loop
from strongroom.keystores.loop_bridge import on_bridge, wait_for
from strongroom.server.app import KmsApp
from strongroom.server.settings import load_settings
from strongroom.server.wiring import build_runtime, prepare

pytestmark = pytest.mark.unit

JSON_11 = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[KmsApp]:
    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    yield KmsApp(build_runtime(settings))


def _scope(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
    }


def _signed(app: KmsApp, headers: dict[str, str], body: bytes, service: str) -> dict[str, str]:
    """``headers`` with a SigV4 signature of the admin's access key."""
    creds = configparser.ConfigParser()
    creds.read(app.rt.settings.credentials_path)
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {**headers, "host": "localhost", "x-amz-date": amz_date}
    request = HttpRequest("POST", "/", "", list(headers.items()), body)
    authorization = sign(
        request,
        access_key_id=creds["strongroom"]["aws_access_key_id"],
        secret_access_key=creds["strongroom"]["aws_secret_access_key"],
        region="us-east-1",
        service=service,
        amz_date=amz_date,
    )
    return {**headers, "authorization": authorization}


def _call(app: KmsApp, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request through the app between its startup and shutdown: status, headers, body."""
    replies: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        replies.append(dict(message))

    async def run() -> None:
        app.startup()
        try:
            await app(_scope(headers), receive, send)
        finally:
            await app.shutdown()

    asyncio.run(run())
    start, reply = replies
    names = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], names, reply["body"]


def _events(app: KmsApp) -> list[dict[str, Any]]:
    """The events of the trail (not the intent records of requests that change state)."""
    return [
        record.event()
        for path in segments(app.rt.settings.audit_path)
        for record in read_segment(path)
        if not record.is_intent
    ]


def test_kms_error_is_json_with_its_type_in_a_header_and_audited(app: KmsApp) -> None:
    status, headers, body = _call(app, {"x-amz-target": "TrentService.ListKeys"}, b"{}")
    assert status == 403
    assert headers["content-type"] == JSON_11
    assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    (event,) = _events(app)
    assert event["eventSource"] == "kms.amazonaws.com"
    assert event["eventName"] == "ListKeys"  # named by the header before authentication
    assert event["requestID"] == headers["x-amzn-requestid"]
    assert event["errorCode"] == "MissingAuthenticationTokenException"


def test_sts_error_is_xml_without_an_error_type_header_and_audited(app: KmsApp) -> None:
    status, headers, body = _call(
        app, {"content-type": FORM}, b"Action=AssumeRole&Version=2011-06-15"
    )
    assert status == 403
    assert headers["content-type"] == "text/xml"
    assert "x-amzn-errortype" not in headers
    assert b"<Code>MissingAuthenticationToken</Code>" in body
    assert f"<RequestId>{headers['x-amzn-requestid']}</RequestId>".encode() in body
    (event,) = _events(app)
    assert event["eventSource"] == "sts.amazonaws.com"
    assert event["eventName"] == "Unknown"  # the body names it, read after authentication
    assert event["errorCode"] == "MissingAuthenticationToken"


def test_sts_unknown_action_is_audited_under_its_name(app: KmsApp) -> None:
    body = b"Action=GetSessionToken&Version=2011-06-15"
    status, _, reply = _call(app, _signed(app, {"content-type": FORM}, body, "sts"), body)
    assert status == 400
    assert b"<Code>InvalidAction</Code>" in reply
    (event,) = _events(app)
    assert event["eventName"] == "GetSessionToken"
    assert event["errorCode"] == "InvalidAction"


def test_an_unexpected_exception_becomes_an_internal_error_with_the_request_id(
    app: KmsApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("secret detail")

    monkeypatch.setitem(registry.HANDLERS, "ListKeys", broken)
    headers = {"x-amz-target": "TrentService.ListKeys", "content-type": JSON_11}
    status, reply_headers, body = _call(app, _signed(app, headers, b"{}", "kms"), b"{}")
    request_id = reply_headers["x-amzn-requestid"]
    assert status == 500
    assert reply_headers["x-amzn-errortype"] == "KMSInternalException"
    assert json.loads(body) == {
        "__type": "KMSInternalException",
        "message": f"An internal error occurred. Request id: {request_id}",
    }
    assert "secret detail" in caplog.text
    (event,) = _events(app)
    assert event["errorCode"] == "KMSInternalException"


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({"x-amz-target": "TrentService.ListKeys"}, b"{}", b'"KMSInternalException"'),
        ({"content-type": FORM}, b"Action=AssumeRole", b"<Code>InternalFailure</Code>"),
    ],
)
def test_an_audit_failure_turns_the_reply_into_an_internal_error(
    app: KmsApp, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], body: bytes, code: bytes
) -> None:
    def failing(event: Any, *, alone: bool) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(app.rt.audit, "commit", failing)
    status, reply_headers, reply = _call(app, headers, body)
    assert status == 500
    assert code in reply
    assert reply_headers["x-amzn-requestid"].encode() in reply


def _create_key_runs(app: KmsApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The request ids of the CreateKey handler runs from now on (the real handler runs)."""
    runs: list[str] = []
    real = registry.HANDLERS["CreateKey"]

    def counted(core: Any, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        runs.append(ctx.request_id)
        return real(core, ctx, params)

    monkeypatch.setitem(registry.HANDLERS, "CreateKey", counted)
    return runs


def _create_key(app: KmsApp) -> tuple[int, dict[str, str], bytes]:
    headers = {"x-amz-target": "TrentService.CreateKey", "content-type": JSON_11}
    return _call(app, _signed(app, headers, b"{}", "kms"), b"{}")


def test_a_change_whose_intent_cannot_be_written_is_refused_before_it_runs(
    app: KmsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _create_key_runs(app, monkeypatch)

    def failing(record: Any, *, alone: bool) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(app.rt.audit, "commit", failing)
    status, headers, _ = _create_key(app)
    assert status == 500 and headers["x-amzn-errortype"] == "KMSInternalException"
    assert runs == []  # the handler never ran: nothing was changed


def test_a_change_whose_event_cannot_be_written_stands_with_its_intent_in_the_trail(
    app: KmsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _create_key_runs(app, monkeypatch)
    real = app.rt.audit.commit

    def events_fail(record: Any, *, alone: bool) -> Any:
        if record.get("recordType") != "Intent":
            raise OSError("disk full")
        return real(record, alone=alone)

    monkeypatch.setattr(app.rt.audit, "commit", events_fail)
    status, headers, _ = _create_key(app)
    assert status == 500 and headers["x-amzn-errortype"] == "KMSInternalException"
    assert runs == [headers["x-amzn-requestid"]]  # the change was made
    records = [
        record.event()
        for path in segments(app.rt.settings.audit_path)
        for record in read_segment(path)
    ]
    (intent,) = records  # the intent alone says it was attempted
    assert intent["recordType"] == "Intent" and intent["eventName"] == "CreateKey"
    assert intent["requestID"] == headers["x-amzn-requestid"]


def test_a_key_that_must_wait_goes_onto_the_bridge_at_once(
    app: KmsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot-path request whose key store must wait on the network (an external key store)
    runs up to the key store straight on the loop, then again on the loop's bridge, where it
    may wait; the next request for the same operation and KeyId goes onto the bridge at
    once, another KeyId tries the plain loop again. All of it on the loop's thread."""
    runs: list[tuple[str, bool, bool]] = []

    def handler(core: Any, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        runs.append((params["KeyId"], on_loop, on_bridge()))
        leave_loop()
        # what an XKS call does on the bridge: wait on the loop without blocking it
        wait_for(asyncio.sleep(0))
        raise NotFoundException(f"Key '{params['KeyId']}' does not exist")

    monkeypatch.setitem(registry.HANDLERS, "Encrypt", handler)
    statuses: list[int] = []

    async def run() -> None:
        app.startup()
        try:
            for key_id in ("k1", "k1", "k2", "k1"):
                body = json.dumps({"KeyId": key_id, "Plaintext": "aGk="}).encode()
                headers = {"x-amz-target": "TrentService.Encrypt", "content-type": JSON_11}
                replies: list[dict[str, Any]] = []

                async def receive(body: bytes = body) -> dict[str, Any]:
                    return {"type": "http.request", "body": body, "more_body": False}

                async def send(message: dict[str, Any], replies: list[Any] = replies) -> None:
                    replies.append(message)

                await app(_scope(_signed(app, headers, body, "kms")), receive, send)
                statuses.append(replies[0]["status"])
        finally:
            await app.shutdown()

    asyncio.run(run())
    assert statuses == [400, 400, 400, 400]
    assert runs == [
        ("k1", True, False),
        ("k1", True, True),  # tried on the loop, then on the bridge
        ("k1", True, True),  # straight onto the bridge
        ("k2", True, False),
        ("k2", True, True),
        ("k1", True, True),
    ]


def test_a_header_value_that_is_not_utf8_is_read_with_replacement_characters(
    app: KmsApp,
) -> None:
    # The pipeline decodes ASCII names and UTF-8 values in one pass and falls back to
    # Latin-1 names and replaced bytes for anything else: a Latin-1 User-Agent (unsigned)
    # is answered and audited as before, not refused.
    body = json.dumps({"NumberOfBytes": 8}).encode()
    headers = {"x-amz-target": "TrentService.GenerateRandom", "content-type": JSON_11}
    scope = _scope(_signed(app, headers, body, "kms"))
    scope["headers"].append((b"user-agent", b"caf\xe9-client/1.0"))
    replies: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        replies.append(message)

    async def run() -> None:
        app.startup()
        try:
            await app(scope, receive, send)
        finally:
            await app.shutdown()

    asyncio.run(run())
    assert replies[0]["status"] == 200
    (event,) = _events(app)
    assert event["eventName"] == "GenerateRandom"
    assert event["userAgent"] == "caf\ufffd-client/1.0"
