"""authorize/decide: the evaluator behind the one authorization call, with its context and
the key's grants; who may retire a grant; operations authorized in the caller's account."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from strongroom.authz import decision
from strongroom.authz.decision import Authorizer
from strongroom.authz.evaluate import Reason
from strongroom.authz.grants import GrantRule, KeyGrants
from strongroom.authz.policy import PolicyKind, default_key_policy
from strongroom.domain.enums import KeySpec
from strongroom.domain.errors import AccessDeniedException
from strongroom.domain.models import Caller, Grant, Key, Principal

from .._keys import ACCOUNT, ARN, symmetric_key

pytestmark = pytest.mark.unit

AUTHZ = Authorizer()
authorize, authorize_identity = AUTHZ.authorize, AUTHZ.authorize_identity
authorize_retire, decide, request_context = (
    AUTHZ.authorize_retire,
    AUTHZ.decide,
    AUTHZ.request_context,
)

ALL_KMS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
    }
)


def _key(policy: str | None = None) -> Key:
    return symmetric_key(policy or default_key_policy(ACCOUNT))


def _caller(kind: str = "user", name: str = "alice", *policies: str) -> Caller:
    arn = (
        f"arn:aws:iam::{ACCOUNT}:root"
        if kind == "root"
        else f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"
    )
    return Caller(
        Principal(arn, ACCOUNT, kind, name), "AKIA", "us-east-1", "10.0.0.1", "ua", policies
    )


def test_user_without_identity_policy_is_denied_by_the_default_key_policy() -> None:
    with pytest.raises(AccessDeniedException) as info:
        authorize(_caller(), "Encrypt", _key())
    assert info.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: kms:Encrypt "
        f"on resource: {ARN} because no identity-based policy allows the kms:Encrypt action"
    )


def test_user_with_identity_policy_and_root_are_allowed() -> None:
    authorize(_caller("user", "alice", ALL_KMS), "Encrypt", _key())
    authorize(_caller("root", "root"), "Encrypt", _key())
    authorize(_caller("root", "root"), "CreateKey")


def test_operation_on_no_key_is_decided_by_identity_policies() -> None:
    assert decide(_caller(), "ListKeys").reason is Reason.NO_IDENTITY_POLICY_ALLOW
    assert decide(_caller("user", "a", ALL_KMS), "ListKeys").allowed


def test_context_carries_encryption_context_key_facts_and_request_alias() -> None:
    ctx = request_context(
        _caller(), _key(), encryption_context={"Dept": "IT", "x": "y"}, request_alias="alias/a"
    )
    assert ctx["kms:encryptioncontext:dept"] == "IT"
    assert ctx["kms:encryptioncontextkeys"] == ("Dept", "x")
    assert ctx["kms:keyspec"] == "SYMMETRIC_DEFAULT"
    assert ctx["kms:keyusage"] == "ENCRYPT_DECRYPT"
    assert ctx["kms:keyorigin"] == "AWS_KMS"
    assert ctx["kms:requestalias"] == "alias/a"
    assert ctx["aws:sourceip"] == "10.0.0.1"
    assert ctx["aws:securetransport"] == "false"
    assert str(ctx["aws:currenttime"]).endswith("Z")


def test_deny_on_encryption_context_condition_wins() -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                json.loads(default_key_policy(ACCOUNT))["Statement"][0],
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"kms:EncryptionContext:tier": "secret"}},
                },
            ],
        }
    )
    root = _caller("root", "root")
    assert decide(root, "Decrypt", _key(policy), encryption_context={"tier": "public"}).allowed
    denied = decide(root, "Decrypt", _key(policy), encryption_context={"tier": "secret"})
    assert denied.reason is Reason.EXPLICIT_DENY_KEY_POLICY


def test_key_policy_is_parsed_once_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = decision.parse_policy

    def counting(text: str, kind: PolicyKind = PolicyKind.KEY) -> object:
        calls.append(text)
        return real(text, kind)

    monkeypatch.setattr(decision, "parse_policy", counting)
    key = _key(default_key_policy(ACCOUNT) + " ")
    authorizer = Authorizer()
    for _ in range(5):
        authorizer.authorize(_caller("root", "root"), "Encrypt", key)
    assert len(calls) == 1
    Authorizer().authorize(_caller("root", "root"), "Encrypt", key)
    assert len(calls) == 2  # each runtime keeps its own parsed policies


def test_current_time_and_epoch_time_come_from_the_authorizers_clock() -> None:
    moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    context = Authorizer(lambda: moment).request_context(_caller(), None)
    assert context["aws:currenttime"] == "2030-01-02T03:04:05Z"
    assert context["aws:epochtime"] == str(int(moment.timestamp()))


ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
GRANT_ID = "a" * 64


def _grants(*operations: str, subset: dict[str, str] | None = None) -> KeyGrants:
    return KeyGrants({GRANT_ID: GrantRule(ALICE, frozenset(operations), None, subset)})


def test_a_grant_allows_its_grantee_what_no_policy_allows() -> None:
    alice, key = _caller(), _key()
    assert not decide(alice, "Encrypt", key).allowed
    allowed = decide(alice, "Encrypt", key, grants=_grants("Encrypt"))
    assert allowed.allowed and allowed.reason is Reason.GRANT
    assert not decide(alice, "Decrypt", key, grants=_grants("Encrypt")).allowed
    assert not decide(_caller("user", "bob"), "Encrypt", key, grants=_grants("Encrypt")).allowed
    refused = decide(alice, "Encrypt", key, grants=_grants("Encrypt"), grant_filter=lambda g: False)
    assert not refused.allowed


def test_a_grant_s_constraint_judges_the_request_s_encryption_context() -> None:
    alice, key, grants = _caller(), _key(), _grants("Decrypt", subset={"Dept": "IT"})
    assert decide(alice, "Decrypt", key, encryption_context={"Dept": "IT"}, grants=grants).allowed
    assert not decide(
        alice, "Decrypt", key, encryption_context={"Dept": "HR"}, grants=grants
    ).allowed
    assert not decide(alice, "Decrypt", key, grants=grants).allowed  # no context at all
    rsa = replace(_key(), key_spec=KeySpec.RSA_2048)  # constraints do not apply to it
    assert decide(alice, "Decrypt", rsa, grants=grants).allowed


def test_an_explicit_deny_beats_a_grant() -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                json.loads(default_key_policy(ACCOUNT))["Statement"][0],
                {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
            ],
        }
    )
    denied = decide(_caller(), "Encrypt", _key(policy), grants=_grants("Encrypt"))
    assert denied.reason is Reason.EXPLICIT_DENY_KEY_POLICY


def _grant(retiring: str | None = None, *operations: str, issuer: str = ACCOUNT) -> Grant:
    return Grant(
        grant_id=GRANT_ID,
        key_arn=ARN,
        grantee_principal=ALICE,
        operations=operations or ("Decrypt",),
        issuing_account=f"arn:aws:iam::{issuer}:root",
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
        retiring_principal=retiring,
    )


def test_retire_grant_is_for_the_retiring_principal_the_grantee_and_the_account() -> None:
    bob_arn = f"arn:aws:iam::{ACCOUNT}:user/bob"
    authorize_retire(_caller("user", "bob"), _key(), _grant(bob_arn))
    authorize_retire(_caller(), _key(), _grant(None, "Decrypt", "RetireGrant"))
    authorize_retire(_caller("root", "root"), _key(), _grant())
    authorize_retire(_caller("user", "carol", ALL_KMS), _key(), _grant())
    authorize_retire(_caller("user", "carol", ALL_KMS), _key(), None)
    for caller, grant in (
        (_caller(), _grant(bob_arn)),
        (_caller("user", "carol"), _grant()),
        (_caller("user", "carol"), None),
    ):
        with pytest.raises(AccessDeniedException) as info:
            authorize_retire(caller, _key(), grant)
        assert info.value.message.endswith(
            "because no identity-based policy allows the kms:RetireGrant action"
        )


def test_retire_grant_in_a_key_policy_has_no_effect_and_an_iam_deny_wins() -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}
            ],
        }
    )
    with pytest.raises(AccessDeniedException):
        authorize_retire(_caller("user", "carol"), _key(policy), _grant())
    deny = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "kms:RetireGrant", "Resource": "*"}],
        }
    )
    bob_arn = f"arn:aws:iam::{ACCOUNT}:user/bob"
    with pytest.raises(AccessDeniedException) as info:
        authorize_retire(_caller("user", "bob", deny), _key(), _grant(bob_arn))
    assert "with an explicit deny in an identity-based policy" in info.value.message


def test_the_other_account_that_issued_a_grant_may_retire_it() -> None:
    other = "444455556666"
    outsider = Caller(
        Principal(f"arn:aws:iam::{other}:user/eve", other, "user", "eve"),
        "AKIA",
        "us-east-1",
        "10.0.0.1",
        "ua",
        (ALL_KMS,),
    )
    authorize_retire(outsider, _key(), _grant(None, issuer=other))
    with pytest.raises(AccessDeniedException):
        authorize_retire(outsider, _key(), _grant())
    authorize_retire(outsider, _key(), _grant(f"arn:aws:iam::{other}:root"))


def test_list_retirable_grants_is_for_principals_of_the_caller_s_account() -> None:
    authorize_identity(_caller("root", "root"), "ListRetirableGrants", ALICE)
    authorize_identity(_caller("user", "a", ALL_KMS), "ListRetirableGrants", ALICE)
    with pytest.raises(AccessDeniedException):
        authorize_identity(_caller(), "ListRetirableGrants", ALICE)
    with pytest.raises(AccessDeniedException) as info:
        authorize_identity(
            _caller("root", "root"), "ListRetirableGrants", "arn:aws:iam::444455556666:root"
        )
    assert "because no resource-based policy allows" in info.value.message
