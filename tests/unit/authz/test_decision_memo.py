"""The decisions an ``Authorizer`` keeps: a decision that follows from the action, key,
principal, static context and policies alone is given again without building the request's
context; one that reads anything of the request (time, source IP, encryption context,
tags, grants, an operation's keys) is made anew for every request."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from strongroom.authz.decision import Authorizer
from strongroom.authz.evaluate import Reason
from strongroom.authz.grants import GrantRule, KeyGrants
from strongroom.authz.policy import default_key_policy
from strongroom.domain.models import Caller, Key, Principal

from .._keys import ACCOUNT, ARN, symmetric_key

pytestmark = pytest.mark.unit

ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def _caller(ip: str = "10.0.0.1", *policies: str, arn: str = ALICE) -> Caller:
    name = arn.rsplit("/", 1)[-1]
    kind = "root" if arn.endswith(":root") else "user"
    return Caller(Principal(arn, ACCOUNT, kind, name), "AKIA", "us-east-1", ip, "ua", policies)


def _policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(principal: str = ALICE, **extra: object) -> dict[str, object]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "kms:*",
        "Resource": "*",
        **extra,
    }


def test_a_decision_that_reads_nothing_of_the_request_is_kept_and_given_again() -> None:
    authz, key = Authorizer(), symmetric_key(_policy(_allow()))
    first = authz.decide(_caller("10.0.0.1"), "Encrypt", key)
    again = authz.decide(_caller("192.0.2.9"), "Encrypt", key)
    assert first.allowed and again.allowed
    assert authz.sizes()["decisions"] == 1
    # Kept without the first request's own keys.
    assert "aws:sourceip" not in again.request.context


def test_a_condition_on_the_source_ip_is_judged_for_every_request() -> None:
    condition = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    authz, key = Authorizer(), symmetric_key(_policy(_allow(Condition=condition)))
    assert authz.decide(_caller("10.0.0.1"), "Encrypt", key).allowed
    assert not authz.decide(_caller("192.0.2.9"), "Encrypt", key).allowed
    assert authz.decide(_caller("10.1.2.3"), "Encrypt", key).allowed
    assert authz.sizes()["decisions"] == 0


def test_a_deny_on_the_encryption_context_is_judged_for_every_request() -> None:
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": ALICE},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:Dept": "HR"}},
    }
    authz, key = Authorizer(), symmetric_key(_policy(_allow(), deny))
    alice = _caller()
    assert authz.decide(alice, "Encrypt", key, encryption_context={"Dept": "IT"}).allowed
    hr = authz.decide(alice, "Encrypt", key, encryption_context={"Dept": "HR"})
    assert hr.reason is Reason.EXPLICIT_DENY_KEY_POLICY
    assert authz.decide(alice, "Encrypt", key).allowed
    assert authz.sizes()["decisions"] == 0


def test_grants_are_judged_for_every_request() -> None:
    authz, key = Authorizer(), symmetric_key(_policy(_allow("arn:aws:iam::111122223333:root")))
    grants = KeyGrants({"a" * 64: GrantRule(ALICE, frozenset({"Encrypt"}), None, None)})
    alice = _caller()
    assert not authz.decide(alice, "Encrypt", key).allowed  # kept: a denial
    granted = authz.decide(alice, "Encrypt", key, grants=grants)
    assert granted.allowed and granted.reason is Reason.GRANT
    assert not authz.decide(alice, "Encrypt", key).allowed


def test_each_key_policy_identity_policy_principal_and_key_has_its_own_decision() -> None:
    authz = Authorizer()
    bob_only = _policy(_allow(f"arn:aws:iam::{ACCOUNT}:user/bob"))
    allows, denies = symmetric_key(_policy(_allow())), symmetric_key(bob_only)
    assert authz.decide(_caller(), "Encrypt", allows).allowed
    # The same key with another policy text (PutKeyPolicy): decided anew.
    assert not authz.decide(_caller(), "Encrypt", denies).allowed
    other: Key = replace(allows, arn=ARN[:-1] + "c")
    assert authz.decide(_caller(), "Encrypt", other).allowed
    bob = _caller(arn=f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert not authz.decide(bob, "Encrypt", allows).allowed
    assert authz.decide(bob, "Encrypt", denies).allowed
    # A user the default key policy delegates to IAM: its identity policies decide.
    default = symmetric_key(default_key_policy(ACCOUNT))
    assert not authz.decide(_caller(), "Encrypt", default).allowed
    iam = _policy({"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"})
    assert authz.decide(_caller("10.0.0.1", iam), "Encrypt", default).allowed
    assert not authz.decide(_caller(), "Decrypt", default).allowed


def test_an_operation_key_that_replaces_a_static_one_is_never_kept() -> None:
    condition = {"StringEquals": {"kms:KeySpec": "RSA_2048"}}
    authz, key = Authorizer(), symmetric_key(_policy(_allow(Condition=condition)))
    alice = _caller()
    assert not authz.decide(alice, "Encrypt", key).allowed
    assert authz.decide(alice, "Encrypt", key, extra={"kms:KeySpec": "RSA_2048"}).allowed
    assert not authz.decide(alice, "Encrypt", key).allowed
