"""The condition keys AWS KMS defines reach the evaluator with AWS's names and value types,
the key's tags and aliases are read only when a policy asks for them, and the compiled
evaluator decides as the plain one does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from strongroom.authz.conditions import ContextValue
from strongroom.authz.context_keys import flag, key_context, request_tags
from strongroom.authz.decision import Authorizer
from strongroom.authz.evaluate import AuthzRequest, RequestPrincipal, evaluate
from strongroom.authz.policy import PolicyKind, parse_policy
from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Caller, Key, Principal

from .._keys import symmetric_key

pytestmark = pytest.mark.unit

AUTHZ = Authorizer()
decide, request_context = AUTHZ.decide, AUTHZ.request_context

ACCOUNT = "111122223333"
ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0000aaaa-12ab-34cd-56ef-1234567890ab"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def _key(policy: str, spec: KeySpec = KeySpec.SYMMETRIC_DEFAULT, multi_region: bool = False) -> Key:
    usage = KeyUsage.ENCRYPT_DECRYPT if spec is KeySpec.SYMMETRIC_DEFAULT else KeyUsage.SIGN_VERIFY
    return symmetric_key(policy).evolve(
        arn=ARN,
        key_usage=usage,
        key_spec=spec,
        multi_region=multi_region,
        primary_region="us-east-1" if multi_region else None,
    )


def _alice(*identity_policies: str) -> Caller:
    principal = Principal(ALICE, ACCOUNT, "user", "alice")
    return Caller(principal, "AKIA", "us-east-1", "10.0.0.1", "ua", identity_policies)


def _allow_alice_if(condition: dict[str, Any]) -> str:
    """A key policy whose only statement lets alice do everything when ``condition`` holds."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": ALICE},
        "Action": "kms:*",
        "Resource": "*",
        "Condition": condition,
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


# (name, action, the operation's condition keys as services pass them, condition, allowed)
CASES: list[tuple[str, str, dict[str, ContextValue], dict[str, Any], bool]] = [
    (
        "EncryptionAlgorithm equal",
        "Encrypt",
        {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}},
        True,
    ),
    (
        "EncryptionAlgorithm other",
        "Decrypt",
        {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}},
        False,
    ),
    (
        "SigningAlgorithm like",
        "Sign",
        {"kms:SigningAlgorithm": "RSASSA_PSS_SHA_256", "kms:MessageType": "RAW"},
        {"StringLike": {"kms:SigningAlgorithm": "RSASSA_PSS*"}},
        True,
    ),
    (
        "SigningAlgorithm unlike",
        "Verify",
        {"kms:SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256", "kms:MessageType": "RAW"},
        {"StringLike": {"kms:SigningAlgorithm": "RSASSA_PSS*"}},
        False,
    ),
    (
        "MessageType RAW only, RAW",
        "Sign",
        {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "RAW"},
        {"StringEquals": {"kms:MessageType": "RAW"}},
        True,
    ),
    (
        "MessageType RAW only, DIGEST",
        "Sign",
        {"kms:SigningAlgorithm": "ECDSA_SHA_256", "kms:MessageType": "DIGEST"},
        {"StringEquals": {"kms:MessageType": "RAW"}},
        False,
    ),
    (
        "MacAlgorithm",
        "GenerateMac",
        {"kms:MacAlgorithm": "HMAC_SHA_384"},
        {"StringEquals": {"kms:MacAlgorithm": ["HMAC_SHA_384", "HMAC_SHA_512"]}},
        True,
    ),
    (
        "MacAlgorithm other",
        "VerifyMac",
        {"kms:MacAlgorithm": "HMAC_SHA_256"},
        {"StringEquals": {"kms:MacAlgorithm": ["HMAC_SHA_384", "HMAC_SHA_512"]}},
        False,
    ),
    (
        "DataKeyPairSpec",
        "GenerateDataKeyPair",
        {"kms:DataKeyPairSpec": "RSA_2048", "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        {"StringLike": {"kms:DataKeyPairSpec": "RSA*"}},
        True,
    ),
    (
        "DataKeyPairSpec other",
        "GenerateDataKeyPairWithoutPlaintext",
        {"kms:DataKeyPairSpec": "ECC_NIST_P256", "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        {"StringLike": {"kms:DataKeyPairSpec": "RSA*"}},
        False,
    ),
    (
        "KeyAgreementAlgorithm",
        "DeriveSharedSecret",
        {"kms:KeyAgreementAlgorithm": "ECDH"},
        {"StringEquals": {"kms:KeyAgreementAlgorithm": "ECDH"}},
        True,
    ),
    (
        "ReEncryptOnSameKey true",
        "ReEncryptFrom",
        {"kms:ReEncryptOnSameKey": flag(True)},
        {"Bool": {"kms:ReEncryptOnSameKey": True}},
        True,
    ),
    (
        "ReEncryptOnSameKey false",
        "ReEncryptTo",
        {"kms:ReEncryptOnSameKey": flag(False)},
        {"Bool": {"kms:ReEncryptOnSameKey": True}},
        False,
    ),
    (
        "PendingWindowInDays at the minimum",
        "ScheduleKeyDeletion",
        {"kms:ScheduleKeyDeletionPendingWindowInDays": "20"},
        {"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 20}},
        True,
    ),
    (
        "PendingWindowInDays below the minimum",
        "ScheduleKeyDeletion",
        {"kms:ScheduleKeyDeletionPendingWindowInDays": "7"},
        {"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 20}},
        False,
    ),
    (
        "BypassPolicyLockoutSafetyCheck absent",
        "PutKeyPolicy",
        {},
        {"Null": {"kms:BypassPolicyLockoutSafetyCheck": True}},
        True,
    ),
    (
        "BypassPolicyLockoutSafetyCheck given",
        "PutKeyPolicy",
        {"kms:BypassPolicyLockoutSafetyCheck": flag(False)},
        {"Null": {"kms:BypassPolicyLockoutSafetyCheck": True}},
        False,
    ),
    (
        "RequestTag present",
        "TagResource",
        request_tags([("Team", "blue")]),
        {"StringEquals": {"aws:RequestTag/team": "blue"}},
        True,
    ),
    (
        "TagKeys forbidden",
        "TagResource",
        request_tags([("ok", "1"), ("Forbidden", "2")]),
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["ok"]}},
        False,
    ),
    (
        "TagKeys of UntagResource",
        "UntagResource",
        {"aws:TagKeys": ("ok",)},
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["ok"]}},
        True,
    ),
    (
        "KeySpec of the key",
        "DescribeKey",
        {},
        {"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT", "kms:MultiRegion": "false"}},
        True,
    ),
    (
        "deprecated CustomerMasterKeyUsage of the key",
        "DescribeKey",
        {},
        {"StringEquals": {"kms:CustomerMasterKeyUsage": "SIGN_VERIFY"}},
        False,
    ),
]


@pytest.mark.parametrize(
    ("action", "extra", "condition", "allowed"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_operation_condition_keys_reach_the_evaluator(
    action: str, extra: dict[str, ContextValue], condition: dict[str, Any], allowed: bool
) -> None:
    key = _key(_allow_alice_if(condition))
    assert decide(_alice(), action, key, extra=extra).allowed is allowed


def test_an_operation_key_that_replaces_a_key_of_the_key_is_decided_per_request() -> None:
    key = _key(_allow_alice_if({"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}))
    for _ in range(2):  # the second time from the memoized scan
        assert decide(_alice(), "Encrypt", key).allowed
        assert not decide(_alice(), "Encrypt", key, extra={"kms:KeySpec": "RSA_2048"}).allowed


def test_create_key_conditions_are_decided_by_identity_policies() -> None:
    identity = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "kms:CreateKey",
                "Resource": "*",
                "Condition": {
                    "Null": {"aws:RequestTag/team": "false"},
                    "StringLike": {"kms:KeySpec": "HMAC_*"},
                },
            },
        }
    )
    alice = _alice(identity)
    tagged = {"kms:KeySpec": "HMAC_256", **request_tags([("team", "a")])}
    assert decide(alice, "CreateKey", extra=tagged).allowed
    assert not decide(alice, "CreateKey", extra={"kms:KeySpec": "HMAC_256"}).allowed
    assert not decide(alice, "CreateKey", extra={**tagged, "kms:KeySpec": "RSA_2048"}).allowed


@pytest.mark.parametrize(
    ("multi_region", "expected"),
    [
        (False, {"kms:multiregion": "false"}),
        (True, {"kms:multiregion": "true", "kms:multiregionkeytype": "PRIMARY"}),
    ],
)
def test_key_context_carries_the_key_resource_keys(
    multi_region: bool, expected: dict[str, str]
) -> None:
    context = key_context(_key("{}", KeySpec.ECC_NIST_P256, multi_region))
    assert context == {
        "kms:keyspec": "ECC_NIST_P256",
        "kms:keyusage": "SIGN_VERIFY",
        "kms:keyorigin": "AWS_KMS",
        "kms:customermasterkeyspec": "ECC_NIST_P256",
        "kms:customermasterkeyusage": "SIGN_VERIFY",
        **expected,
    }
    assert all(type(v) is str for v in context.values())


def test_request_tags_keep_tag_keys_as_sent_and_lower_case_the_key_names() -> None:
    assert request_tags([("Team", "Blue"), ("env", "prod")]) == {
        "aws:requesttag/team": "Blue",
        "aws:requesttag/env": "prod",
        "aws:tagkeys": ("Team", "env"),
    }
    assert flag(True) == "true" and flag(False) == "false"


def test_request_context_lower_cases_the_operation_keys() -> None:
    context = request_context(_alice(), None, extra={"kms:SigningAlgorithm": "ECDSA_SHA_256"})
    assert context["kms:signingalgorithm"] == "ECDSA_SHA_256"
    assert "kms:keyspec" not in context


class Facts:
    """A key's tags and aliases, counting how often they are read."""

    def __init__(self, tags: Mapping[str, str], aliases: tuple[str, ...]) -> None:
        self._tags, self._aliases = tags, aliases
        self.reads: list[str] = []

    def tags(self) -> Mapping[str, str]:
        self.reads.append("tags")
        return self._tags

    def aliases(self) -> tuple[str, ...]:
        self.reads.append("aliases")
        return self._aliases


@pytest.mark.parametrize(
    ("condition", "tags", "aliases", "allowed", "reads"),
    [
        (
            {"StringEquals": {"aws:ResourceTag/Project": "alpha"}},
            {"project": "alpha"},
            (),
            True,
            ["tags"],
        ),
        (
            {"StringEquals": {"aws:ResourceTag/project": "alpha"}},
            {"project": "beta"},
            (),
            False,
            ["tags"],
        ),
        ({"StringEquals": {"aws:ResourceTag/project": "alpha"}}, {}, (), False, ["tags"]),
        (
            {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-a-*"}},
            {},
            ("alias/x", "alias/team-a-1"),
            True,
            ["aliases"],
        ),
        (
            {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-a-*"}},
            {},
            (),
            False,
            ["aliases"],
        ),
        (
            {"ForAllValues:StringLike": {"kms:ResourceAliases": "alias/team-a-*"}},
            {},
            ("alias/x",),
            False,
            ["aliases"],
        ),
        # A policy variable naming a tag reads the tags too.
        (
            {
                "StringEquals": {
                    "aws:PrincipalArn": "arn:aws:iam::111122223333:user/${aws:ResourceTag/owner}"
                }
            },
            {"owner": "alice"},
            (),
            True,
            ["tags"],
        ),
        # No condition on tags or aliases: neither is read.
        (
            {"StringEquals": {"kms:CallerAccount": ACCOUNT}},
            {"project": "alpha"},
            ("alias/a",),
            True,
            [],
        ),
    ],
)
def test_resource_tags_and_aliases_are_read_only_when_a_condition_asks(
    condition: dict[str, Any],
    tags: dict[str, str],
    aliases: tuple[str, ...],
    allowed: bool,
    reads: list[str],
) -> None:
    facts = Facts(tags, aliases)
    key = _key(_allow_alice_if(condition))
    assert decide(_alice(), "Encrypt", key, resource=facts).allowed is allowed
    assert facts.reads == reads


def test_resource_tags_asked_by_an_identity_policy_are_read() -> None:
    identity = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Deny",
                "Action": "kms:*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/frozen": "yes"}},
            },
        }
    )
    key = _key(_allow_alice_if({"Bool": {"aws:SecureTransport": "false"}}))
    assert decide(_alice(identity), "Encrypt", key, resource=Facts({}, ())).allowed
    facts = Facts({"frozen": "yes"}, ())
    assert not decide(_alice(identity), "Encrypt", key, resource=facts).allowed
    assert facts.reads == ["tags"]


EVALUATE = json.loads(
    (Path(__file__).parents[2] / "vectors" / "authz" / "evaluate.json").read_text()
)


@pytest.mark.parametrize(
    "scenario", EVALUATE["scenarios"], ids=[s["name"] for s in EVALUATE["scenarios"]]
)
def test_static_part_of_the_context_decides_as_the_whole_context(
    scenario: dict[str, Any],
) -> None:
    """Conditions on the principal's keys, evaluated once per (action, resource, principal)
    from ``AuthzRequest.static``, decide every evaluate.json scenario as before, first and
    second time (memoized)."""
    principal = RequestPrincipal.from_arn(
        EVALUATE["principals"][scenario["principal"]], scenario.get("principal_tags")
    )
    raw = {
        k.lower(): (tuple(v) if isinstance(v, list) else v) for k, v in scenario["context"].items()
    }
    plain = AuthzRequest.create(scenario["action"], scenario["resource"], principal, raw)
    principal_part = AuthzRequest.create(scenario["action"], scenario["resource"], principal)
    static = {k: v for k, v in principal_part.context.items() if k not in raw}
    compiled = AuthzRequest(plain.action, plain.resource, principal, plain.context, static)
    name = scenario["key_policy"]
    policies = EVALUATE["key_policies"]
    key_policy = None if name is None else parse_policy(json.dumps(policies[name]))
    identity = [
        parse_policy(json.dumps(EVALUATE["identity_policies"][n]), PolicyKind.IDENTITY)
        for n in scenario["identity_policies"]
    ]
    grants = scenario["grants_allow"]
    expected = evaluate(plain, key_policy, identity, grants)
    for _ in range(2):
        got = evaluate(compiled, key_policy, identity, grants)
        assert (got.allowed, got.reason) == (expected.allowed, expected.reason)


def test_memoized_static_conditions_follow_the_principal_s_tags_and_the_key_s_region() -> None:
    """The static part of a decision is memoized per policy; a principal whose tags changed
    (same ARN) and a multi-Region key whose primary moved must not meet the old result."""
    from dataclasses import replace

    key = _key(_allow_alice_if({"StringEquals": {"aws:PrincipalTag/team": "a"}}))
    alice = _alice()
    team_a = replace(alice, tags=(("team", "a"),))
    team_b = replace(alice, tags=(("team", "b"),))
    for _ in range(2):  # the second round runs on the memo
        assert decide(team_a, "Encrypt", key).allowed
        assert not decide(team_b, "Encrypt", key).allowed
        assert not decide(alice, "Encrypt", key).allowed
    primary_only = _allow_alice_if({"StringEquals": {"kms:MultiRegionKeyType": "PRIMARY"}})
    primary = _key(primary_only, multi_region=True)
    replica = primary.evolve(primary_region="eu-west-1")  # UpdatePrimaryRegion moved it away
    for _ in range(2):
        assert decide(alice, "Encrypt", primary).allowed
        assert not decide(alice, "Encrypt", replica).allowed
