"""The evaluator decides as AWS KMS does: default deny, explicit deny wins, the key policy is
the root of trust, grants add permissions, and cross-account use needs both sides."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from strongroom.authz.evaluate import (
    CROSS_ACCOUNT_ACTIONS,
    AuthzRequest,
    Decision,
    PrincipalKind,
    Reason,
    RequestPrincipal,
    check_lockout,
    evaluate,
)
from strongroom.authz.policy import Policy, PolicyKind, default_key_policy, parse_policy
from strongroom.domain.errors import AccessDeniedException, MalformedPolicyDocumentException

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).parents[2] / "vectors" / "authz" / "evaluate.json"
DATA: dict[str, Any] = json.loads(VECTORS.read_text())
SCENARIOS: list[dict[str, Any]] = DATA["scenarios"]
KEY_ARN: str = DATA["key"]


@cache
def key_policy(name: str) -> Policy:
    return parse_policy(json.dumps(DATA["key_policies"][name]), PolicyKind.KEY)


@cache
def identity_policy(name: str) -> Policy:
    return parse_policy(json.dumps(DATA["identity_policies"][name]), PolicyKind.IDENTITY)


def context_of(raw: dict[str, Any]) -> dict[str, str | tuple[str, ...]]:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}


def decide(scenario: dict[str, Any]) -> Decision:
    principal = RequestPrincipal.from_arn(
        DATA["principals"][scenario["principal"]], scenario.get("principal_tags")
    )
    request = AuthzRequest.create(
        scenario["action"], scenario["resource"], principal, context_of(scenario["context"])
    )
    name = scenario["key_policy"]
    return evaluate(
        request,
        None if name is None else key_policy(name),
        [identity_policy(n) for n in scenario["identity_policies"]],
        grants_allow=scenario["grants_allow"],
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario: dict[str, Any]) -> None:
    decision = decide(scenario)
    expected = scenario["expected"]
    assert (decision.allowed, decision.reason) == (expected["allowed"], Reason[expected["reason"]])
    if "message" in expected:
        assert decision.message == expected["message"]


def test_every_reason_is_exercised_by_a_scenario() -> None:
    seen = {s["expected"]["reason"] for s in SCENARIOS}
    assert seen == {r.name for r in Reason}


def test_every_key_policy_and_identity_policy_in_the_vectors_parses() -> None:
    for name in DATA["key_policies"]:
        key_policy(name)
    for name in DATA["identity_policies"]:
        identity_policy(name)


ALICE = RequestPrincipal.from_arn("arn:aws:iam::111122223333:user/alice")


def test_allowed_decision_has_no_message_and_does_not_raise() -> None:
    policy = parse_policy(default_key_policy("111122223333"))
    root = RequestPrincipal.from_arn("arn:aws:iam::111122223333:root")
    decision = evaluate(AuthzRequest.create("kms:Encrypt", KEY_ARN, root), policy)
    assert decision.allowed
    assert decision.message == ""
    assert decision.statement is policy.statements[0]
    decision.raise_if_denied()


def test_denied_decision_raises_access_denied_with_aws_text() -> None:
    policy = parse_policy(default_key_policy("111122223333"))
    decision = evaluate(AuthzRequest.create("kms:Encrypt", KEY_ARN, ALICE), policy)
    with pytest.raises(AccessDeniedException) as info:
        decision.raise_if_denied()
    assert info.value.message == (
        "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt "
        f"on resource: {KEY_ARN} because no identity-based policy allows the kms:Encrypt action"
    )


def test_explicit_deny_decision_names_the_deciding_statement() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
                {
                    "Sid": "NoDecrypt",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
            ],
        }
    )
    decision = evaluate(AuthzRequest.create("kms:Decrypt", KEY_ARN, ALICE), parse_policy(text))
    assert decision.reason is Reason.EXPLICIT_DENY_KEY_POLICY
    assert decision.statement is not None
    assert decision.statement.sid == "NoDecrypt"


def test_request_context_carries_principal_keys_case_insensitively() -> None:
    principal = RequestPrincipal.from_arn(
        "arn:aws:sts::111122223333:assumed-role/KeyUser/ci-job", {"Team": "Blue"}
    )
    request = AuthzRequest.create(
        "kms:Encrypt", KEY_ARN, principal, {"kms:EncryptionContext:AppName": "ExampleApp"}
    )
    assert request.context["aws:principalarn"] == "arn:aws:iam::111122223333:role/KeyUser"
    assert request.context["aws:principalaccount"] == "111122223333"
    assert request.context["kms:calleraccount"] == "111122223333"
    assert request.context["aws:principaltype"] == "AssumedRole"
    assert request.context["aws:principaltag/team"] == "Blue"
    assert request.context["aws:resourceaccount"] == "111122223333"
    assert request.context["kms:encryptioncontext:appname"] == "ExampleApp"


def test_explicit_context_overrides_derived_keys() -> None:
    request = AuthzRequest.create(
        "kms:Encrypt", KEY_ARN, ALICE, {"kms:CallerAccount": "999999999999"}
    )
    assert request.context["kms:calleraccount"] == "999999999999"


def test_username_is_set_for_users_only() -> None:
    assert AuthzRequest.create("kms:Encrypt", KEY_ARN, ALICE).context["aws:username"] == "alice"
    role = RequestPrincipal.from_arn("arn:aws:sts::111122223333:assumed-role/R/s")
    assert "aws:username" not in AuthzRequest.create("kms:Encrypt", KEY_ARN, role).context


@pytest.mark.parametrize(
    ("arn", "kind", "role_arn"),
    [
        ("arn:aws:iam::111122223333:root", PrincipalKind.ROOT, None),
        ("arn:aws:iam::111122223333:user/a/b/alice", PrincipalKind.USER, None),
        ("arn:aws:iam::111122223333:role/R", PrincipalKind.ROLE, None),
        (
            "arn:aws:sts::111122223333:assumed-role/R/session",
            PrincipalKind.ASSUMED_ROLE,
            "arn:aws:iam::111122223333:role/R",
        ),
        ("arn:aws:sts::111122223333:federated-user/bob", PrincipalKind.FEDERATED_USER, None),
    ],
)
def test_principal_from_arn(arn: str, kind: PrincipalKind, role_arn: str | None) -> None:
    principal = RequestPrincipal.from_arn(arn)
    assert (principal.kind, principal.account, principal.role_arn) == (
        kind,
        "111122223333",
        role_arn,
    )


@pytest.mark.parametrize(
    "arn",
    ["alice", "arn:aws:kms:us-west-2:111122223333:key/x", "arn:aws:iam::111122223333:group/g"],
)
def test_principal_from_arn_rejects_other_arns(arn: str) -> None:
    with pytest.raises(ValueError, match="not an IAM principal ARN"):
        RequestPrincipal.from_arn(arn)


@pytest.mark.parametrize(
    "action", ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation"]
)
def test_key_administration_is_not_a_cross_account_action(action: str) -> None:
    assert action.lower() not in CROSS_ACCOUNT_ACTIONS


def test_service_principal_matches_service_statement() -> None:
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"Service": "logs.us-west-2.amazonaws.com"},
                "Action": "kms:Encrypt",
                "Resource": "*",
            },
        }
    )
    service = RequestPrincipal(
        "logs.us-west-2.amazonaws.com", "111122223333", PrincipalKind.SERVICE
    )
    other = RequestPrincipal("s3.amazonaws.com", "111122223333", PrincipalKind.SERVICE)
    policy = parse_policy(text)
    assert evaluate(AuthzRequest.create("kms:Encrypt", KEY_ARN, service), policy).allowed
    assert not evaluate(AuthzRequest.create("kms:Encrypt", KEY_ARN, other), policy).allowed


def test_lockout_check_passes_for_the_default_policy_and_the_root() -> None:
    root = RequestPrincipal.from_arn("arn:aws:iam::111122223333:root")
    check_lockout(parse_policy(default_key_policy("111122223333")), KEY_ARN, root)


def test_lockout_check_passes_for_a_user_whose_identity_policy_allows() -> None:
    allow_put = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": "kms:PutKeyPolicy", "Resource": "*"},
            }
        ),
        PolicyKind.IDENTITY,
    )
    check_lockout(parse_policy(default_key_policy("111122223333")), KEY_ARN, ALICE, [allow_put])


def test_lockout_check_refuses_a_policy_that_locks_the_caller_out() -> None:
    users_only = key_policy("console_without_root")
    with pytest.raises(MalformedPolicyDocumentException) as info:
        check_lockout(users_only, KEY_ARN, ALICE)
    assert info.value.message == (
        "The new key policy will not allow you to update the key policy in the future."
    )


def test_lockout_check_refuses_when_identity_policy_does_not_allow() -> None:
    with pytest.raises(MalformedPolicyDocumentException):
        check_lockout(parse_policy(default_key_policy("111122223333")), KEY_ARN, ALICE)


def test_cross_account_actions_match_the_service_model() -> None:
    import re

    import botocore.session

    model = botocore.session.get_session().get_service_model("kms")
    documented = set()
    for name in model.operation_names:
        doc = model.operation_model(name).documentation
        if re.search(r"Cross-account use</b>:\s*Yes", doc):
            documented |= {"ReEncryptFrom", "ReEncryptTo"} if name == "ReEncrypt" else {name}
    assert {f"kms:{n}".lower() for n in documented} == CROSS_ACCOUNT_ACTIONS
