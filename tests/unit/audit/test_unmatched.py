"""``audit/unmatched.py`` over trails that real ``AuditLog`` writers wrote: an intent is
matched by its request's event in the same writer's segments (the next segment after a
roll-over, an event with an error too), an intent with none is listed, and one younger than
the grace is counted apart."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit.events import (
    AWS_INTERNAL,
    IAM_EVENT_SOURCE,
    build_event,
    build_intent,
    operator_identity,
    service_identity,
)
from strongroom.audit.lifecycle import Lifecycle
from strongroom.audit.log import AuditLog
from strongroom.audit.signing import load_signer
from strongroom.audit.unmatched import unmatched_intents
from strongroom.keystores.filekey import FileRootKey

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
IDENTITY = {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}


def _common(request_id: str, name: str) -> dict[str, Any]:
    return {
        "event_time": datetime.now(UTC),
        "event_name": name,
        "region": "us-east-1",
        "request_id": request_id,
        "source_ip": "127.0.0.1",
        "user_agent": "test",
        "user_identity": IDENTITY,
        "request_parameters": {"KeyId": f"key-{request_id}"},
    }


def _intent(request_id: str, name: str = "DisableKey") -> dict[str, Any]:
    return build_intent(**_common(request_id, name))


def _event(request_id: str, name: str = "DisableKey", error: str | None = None) -> dict[str, Any]:
    return build_event(
        **_common(request_id, name),
        response_elements=None,
        resources=[],
        error_code=error,
        error_message=None if error is None else "refused",
    )


def _write(directory: Path, *steps: dict[str, Any] | str) -> None:
    """One writer's run: each record committed, "roll" rolls the segment over."""
    root = directory.parent / "root.key"
    key = FileRootKey(root) if root.exists() else FileRootKey.create(root)
    audit = AuditLog(
        directory, fsync=False, lifecycle=Lifecycle(), signer=load_signer(directory, key)
    )
    audit.start()

    async def run() -> None:
        for step in steps:
            if step == "roll":
                audit.roll()
            else:
                assert isinstance(step, dict)
                assert audit.commit(step, alone=True) is None

    asyncio.run(run())
    audit.stop()


def test_an_intent_without_its_event_is_listed_and_matched_ones_are_not(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    _write(
        directory,
        _intent("rolled"),
        "roll",  # its event is in the writer's next segment
        _event("rolled"),
        _intent("refused"),
        _event("refused", error="NotFoundException"),  # a refusal: matched
        _event("read", "Encrypt"),  # no intent: nothing to match
        _intent("lost", "TagResource"),
    )
    _write(directory, _intent("other"), _event("other"))  # another writer, matched
    scan = unmatched_intents(directory, now=time.time(), older_than=0)
    assert [(u.request_id, u.operation, u.resource) for u in scan.unmatched] == [
        ("lost", "TagResource", "key-lost")
    ]
    assert scan.unmatched[0].caller == IDENTITY["arn"]
    assert (scan.intents, scan.recent) == (4, 0)
    assert scan.segments == 3


def test_a_scheduled_jobs_intent_names_aws_internal_as_its_caller(tmp_path: Path) -> None:
    """A job's intent (a deletion at the end of its waiting period) has no principal ARN:
    its caller is who CloudTrail says invoked it, AWS Internal."""
    directory = tmp_path / "audit"
    job = {**_common("job", "DeleteKey"), "user_identity": service_identity(ACCOUNT)}
    _write(directory, build_intent(**job))
    [found] = unmatched_intents(directory, now=time.time(), older_than=0).unmatched
    assert found.caller == AWS_INTERNAL


def test_an_intent_younger_than_the_grace_is_counted_apart(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    _write(directory, _intent("in flight"))
    scan = unmatched_intents(directory, now=time.time(), older_than=60)
    assert (scan.unmatched, scan.recent, scan.intents) == ([], 1, 1)
    later = unmatched_intents(directory, now=time.time() + 61, older_than=60)
    assert [u.request_id for u in later.unmatched] == ["in flight"]


def test_an_admin_commands_intent_names_its_operator_and_principal(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    intent = build_intent(
        **{
            **_common("cli", "CreateUser"),
            "user_identity": operator_identity("ops", "host1"),
            "request_parameters": {"UserName": "alice"},
            "event_source": IAM_EVENT_SOURCE,
        }
    )
    _write(directory, intent)
    [found] = unmatched_intents(directory, now=time.time(), older_than=0).unmatched
    assert (found.operation, found.caller, found.resource) == ("CreateUser", "ops@host1", "alice")
