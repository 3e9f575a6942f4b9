"""CloudTrail's userIdentity of each kind of caller, and STS events without session secrets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.audit.events import STS_EVENT_SOURCE, build_event, caller_identity, scrub
from strongroom.domain.ids import assumed_role_arn, role_unique_id
from strongroom.domain.models import Caller, Principal, RoleSession

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"


def _caller(principal: Principal, session: RoleSession | None = None) -> Caller:
    return Caller(principal, "AKIDEXAMPLE", "us-east-1", "10.0.0.1", "ua", session=session)


def test_user_identity_of_a_user_and_of_the_root() -> None:
    user = Principal(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, "user", "alice")
    assert caller_identity(_caller(user)) == {
        "type": "IAMUser",
        "principalId": "alice",
        "arn": user.arn,
        "accountId": ACCOUNT,
        "accessKeyId": "AKIDEXAMPLE",
        "userName": "alice",
    }
    root = Principal(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "root", "root")
    identity = caller_identity(_caller(root))
    assert identity is not None and identity["type"] == "Root"
    assert identity["principalId"] == ACCOUNT
    assert caller_identity(None) is None


def test_user_identity_of_a_role_session_has_its_session_context() -> None:
    created = datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
    session = RoleSession(ROLE, role_unique_id(ROLE), "web", created, created)
    arn = assumed_role_arn(ROLE, "web")
    principal = Principal(arn, ACCOUNT, "assumed-role", "app/web")
    assert caller_identity(_caller(principal, session)) == {
        "type": "AssumedRole",
        "principalId": f"{role_unique_id(ROLE)}:web",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/web",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIDEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": role_unique_id(ROLE),
                "arn": ROLE,
                "accountId": ACCOUNT,
                "userName": "app",
            },
            "attributes": {"creationDate": "2026-02-03T04:05:06Z", "mfaAuthenticated": "false"},
        },
    }


def test_role_unique_id_is_stable_and_of_aws_form() -> None:
    assert role_unique_id(ROLE) == role_unique_id(ROLE)
    assert role_unique_id(ROLE) != role_unique_id(ROLE + "2")
    assert len(role_unique_id(ROLE)) == 21 and role_unique_id(ROLE).startswith("AROA")


def test_assume_role_event_keeps_no_session_secret() -> None:
    response = {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLE",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": datetime(2026, 1, 1, tzinfo=UTC),
        },
        "AssumedRoleUser": {"Arn": "arn", "AssumedRoleId": "AROA:web"},
    }
    assert scrub(response) == {
        "credentials": {"AccessKeyId": "ASIAEXAMPLE", "Expiration": "2026-01-01T00:00:00+00:00"},
        "assumedRoleUser": {"Arn": "arn", "AssumedRoleId": "AROA:web"},
    }
    event = build_event(
        event_time=datetime(2026, 1, 1, tzinfo=UTC),
        event_name="AssumeRole",
        region="us-east-1",
        request_id="r",
        source_ip="10.0.0.1",
        user_agent="ua",
        user_identity=None,
        request_parameters={"RoleArn": ROLE, "RoleSessionName": "web"},
        response_elements=response,
        resources=[ROLE],
        error_code=None,
        error_message=None,
        event_source=STS_EVENT_SOURCE,
    )
    assert event["eventSource"] == "sts.amazonaws.com"
    assert event["resources"] == [{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": ROLE}]
    assert "token" not in str(event) and "secret" not in str(event)
