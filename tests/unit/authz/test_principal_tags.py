"""The caller's IAM tags reach aws:PrincipalTag/<key> (names case-insensitive, values
case-sensitive), and a role session is its role for key policies and aws:PrincipalArn."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from strongroom.authz.decision import Authorizer
from strongroom.authz.evaluate import Reason
from strongroom.authz.policy import default_key_policy
from strongroom.domain.models import Caller, Principal, RoleSession

from .._keys import ACCOUNT, ARN, symmetric_key

pytestmark = pytest.mark.unit

AUTHZ = Authorizer()
decide, request_context = AUTHZ.decide, AUTHZ.request_context

ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/app/web"
TEAM_BLUE = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/Team": "blue"}},
            }
        ],
    }
)


def _user(*tags: tuple[str, str]) -> Caller:
    principal = Principal(f"arn:aws:iam::{ACCOUNT}:user/alice", ACCOUNT, "user", "alice")
    return Caller(principal, "AKIA", "us-east-1", "10.0.0.1", "ua", (TEAM_BLUE,), tuple(tags))


def _session(*policies: str) -> Caller:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Caller(
        Principal(SESSION, ACCOUNT, "assumed-role", "app/web"),
        "ASIA",
        "us-east-1",
        "10.0.0.1",
        "ua",
        policies,
        (("dept", "sec"),),
        RoleSession(ROLE, "AROAEXAMPLE", "web", now, now),
    )


@pytest.mark.parametrize(
    ("tags", "allowed"),
    [
        ((("team", "blue"),), True),
        ((("TEAM", "blue"),), True),
        ((("team", "Blue"),), False),
        ((), False),
        ((("team", "blue"),), True),  # the same principal again: decisions follow its tags
    ],
)
def test_principal_tag_condition_follows_the_callers_tags(
    tags: tuple[tuple[str, str], ...], allowed: bool
) -> None:
    decision = decide(_user(*tags), "Encrypt", symmetric_key(default_key_policy(ACCOUNT)))
    assert decision.allowed is allowed


def test_principal_tags_are_in_the_context_under_lower_case_names() -> None:
    decision = decide(
        _user(("Team", "Blue")), "Encrypt", symmetric_key(default_key_policy(ACCOUNT))
    )
    assert decision.request.context["aws:principaltag/team"] == "Blue"


def test_session_is_its_role_for_key_policies_and_principal_arn() -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ROLE},
                    "Action": "kms:Encrypt",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalTag/dept": "sec"}},
                }
            ],
        }
    )
    decision = decide(_session(), "Encrypt", symmetric_key(policy))
    assert (decision.allowed, decision.reason) == (True, Reason.KEY_POLICY)
    assert decision.request.context["aws:principalarn"] == ROLE
    assert decision.request.context["aws:principaltype"] == "AssumedRole"
    denied = decide(_session(), "Decrypt", symmetric_key(policy))
    assert denied.message == (
        f"User: {SESSION} is not authorized to perform: kms:Decrypt on resource: {ARN} "
        "because no resource-based policy allows the kms:Decrypt action"
    )


def test_request_context_is_unchanged_by_tags() -> None:
    # Tags belong to the principal's part of the context, not to the request's.
    assert "aws:principaltag/team" not in request_context(_user(("team", "x")), None)
