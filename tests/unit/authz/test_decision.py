"""authorize/decide: the evaluator behind the one authorization call, with its context."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from strongroom.authz import decision
from strongroom.authz.decision import POLICIES, authorize, decide, request_context
from strongroom.authz.evaluate import Reason
from strongroom.authz.policy import PolicyKind, default_key_policy
from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.errors import AccessDeniedException
from strongroom.domain.models import Caller, Key, Principal

pytestmark = pytest.mark.unit

ACCOUNT = "111122223333"
ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALL_KMS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
    }
)


def _key(policy: str | None = None) -> Key:
    return Key(
        arn=ARN,
        key_id=ARN.rsplit("/", 1)[1],
        account=ACCOUNT,
        region="us-east-1",
        state=KeyState.ENABLED,
        description="",
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        origin=Origin.AWS_KMS,
        key_manager=KeyManager.CUSTOMER,
        multi_region=False,
        policy=policy or default_key_policy(ACCOUNT),
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
        current_version=1,
    )


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
    monkeypatch.setattr(decision, "POLICIES", decision.PolicyCache())
    key = _key(default_key_policy(ACCOUNT) + " ")
    for _ in range(5):
        decision.authorize(_caller("root", "root"), "Encrypt", key)
    assert len(calls) == 1
    assert POLICIES is not decision.POLICIES
