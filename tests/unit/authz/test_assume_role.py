"""sts:AssumeRole under trust policies: parsed as resource-based policies without a Resource,
decided by the evaluator's rules with the role's ARN as the resource."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.authz.decision import Authorizer
from strongroom.authz.evaluate import AuthzRequest, Reason, RequestPrincipal, evaluate
from strongroom.authz.policy import PolicyKind, default_trust_policy, parse_policy
from strongroom.domain.errors import AccessDeniedException, MalformedPolicyDocumentException
from strongroom.domain.models import Caller, Principal, RoleSession

pytestmark = pytest.mark.unit

authorize_assume_role = Authorizer().authorize_assume_role

A = "111122223333"
B = "444455556666"
ROLE = f"arn:aws:iam::{A}:role/app"
ALICE = f"arn:aws:iam::{A}:user/alice"
BOB = f"arn:aws:iam::{B}:user/bob"
ALLOW_ASSUME = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE}],
    }
)
DENY_ASSUME = ALLOW_ASSUME.replace('"Allow"', '"Deny"')


def _trust(*principals: str, **extra: Any) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**statement, **extra}]})


def _decide(caller: str, trust: str, *identity: str, context: dict[str, str] | None = None) -> Any:
    request = AuthzRequest.create(
        "sts:AssumeRole", ROLE, RequestPrincipal.from_arn(caller), context or {}
    )
    return evaluate(
        request,
        parse_policy(trust, PolicyKind.TRUST),
        [parse_policy(i, PolicyKind.IDENTITY) for i in identity],
    )


@pytest.mark.parametrize(
    ("caller", "trust", "identity", "allowed", "reason"),
    [
        (ALICE, default_trust_policy(A), [], False, Reason.NO_IDENTITY_POLICY_ALLOW),
        (ALICE, default_trust_policy(A), [ALLOW_ASSUME], True, Reason.IDENTITY_POLICY),
        (ALICE, _trust(ALICE), [], True, Reason.KEY_POLICY),
        (
            ALICE,
            _trust(f"arn:aws:iam::{A}:user/carol"),
            [ALLOW_ASSUME],
            False,
            Reason.NO_KEY_POLICY_ALLOW,
        ),
        (ALICE, _trust(ALICE), [DENY_ASSUME], False, Reason.EXPLICIT_DENY_IDENTITY_POLICY),
        # Across accounts the trust policy and the caller's identity policy must both allow.
        (BOB, _trust(B), [ALLOW_ASSUME], True, Reason.IDENTITY_POLICY),
        (BOB, _trust(BOB), [], False, Reason.NO_IDENTITY_POLICY_ALLOW),
        (BOB, _trust(BOB), [ALLOW_ASSUME], True, Reason.IDENTITY_POLICY),
        (BOB, default_trust_policy(A), [ALLOW_ASSUME], False, Reason.NO_KEY_POLICY_ALLOW),
        # A role session is named by its role's ARN (role chaining).
        (
            f"arn:aws:sts::{A}:assumed-role/first/s",
            _trust(f"arn:aws:iam::{A}:role/first"),
            [],
            True,
            Reason.KEY_POLICY,
        ),
    ],
    ids=[
        "default trust, no identity policy",
        "default trust, identity policy",
        "trust names the caller",
        "trust names another",
        "identity deny wins",
        "other account delegated",
        "other account named, no identity policy",
        "other account named, identity policy",
        "other account not trusted",
        "role session by its role",
    ],
)
def test_assume_role_decision(
    caller: str, trust: str, identity: list[str], allowed: bool, reason: Reason
) -> None:
    decision = _decide(caller, trust, *identity)
    assert (decision.allowed, decision.reason) == (allowed, reason)


def test_denial_message_is_aws_text_for_sts_assume_role() -> None:
    decision = _decide(ALICE, default_trust_policy(A))
    assert decision.message == (
        f"User: {ALICE} is not authorized to perform: sts:AssumeRole on resource: {ROLE} "
        "because no identity-based policy allows the sts:AssumeRole action"
    )


def test_trust_policy_conditions_see_the_session_name() -> None:
    trust = _trust(ALICE, Condition={"StringLike": {"sts:RoleSessionName": "ci-*"}})
    assert _decide(ALICE, trust, context={"sts:RoleSessionName": "ci-7"}).allowed
    assert not _decide(ALICE, trust, context={"sts:RoleSessionName": "dev-7"}).allowed


def test_trust_policy_statement_applies_to_its_role_whatever_the_resource() -> None:
    policy = parse_policy(_trust(ALICE), PolicyKind.TRUST)
    assert policy.statements[0].matches_resource(ROLE)
    assert policy.statements[0].matches_resource(f"arn:aws:iam::{A}:role/other")


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": ALICE},
                "Action": "sts:AssumeRole",
                "Resource": "*",
            },
            "Has prohibited field Resource",
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": ALICE},
                "Action": "sts:AssumeRole",
                "NotResource": ROLE,
            },
            "Has prohibited field Resource",
        ),
        (
            {"Effect": "Allow", "Action": "sts:AssumeRole"},
            "a trust policy statement must have a Principal or NotPrincipal",
        ),
    ],
)
def test_malformed_trust_policy_is_refused(statement: dict[str, Any], message: str) -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    with pytest.raises(MalformedPolicyDocumentException) as info:
        parse_policy(text, PolicyKind.TRUST)
    assert info.value.message == f"Statement[0]: {message}"


def test_authorize_assume_role_uses_the_callers_identity_policies() -> None:
    principal = Principal(ALICE, A, "user", "alice")
    allowed = Caller(principal, "AKIA", "us-east-1", "10.0.0.1", "ua", (ALLOW_ASSUME,))
    authorize_assume_role(allowed, ROLE, default_trust_policy(A), {"sts:RoleSessionName": "s"})
    refused = Caller(principal, "AKIA", "us-east-1", "10.0.0.1", "ua")
    with pytest.raises(AccessDeniedException):
        authorize_assume_role(refused, ROLE, default_trust_policy(A), {})


def test_authorize_assume_role_by_a_session_of_a_trusted_role() -> None:
    from datetime import UTC, datetime

    first = f"arn:aws:iam::{A}:role/first"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    session = Caller(
        Principal(f"arn:aws:sts::{A}:assumed-role/first/s", A, "assumed-role", "first/s"),
        "ASIA",
        "us-east-1",
        "10.0.0.1",
        "ua",
        session=RoleSession(first, "AROAX", "s", now, now),
    )
    authorize_assume_role(session, ROLE, _trust(first), {})
