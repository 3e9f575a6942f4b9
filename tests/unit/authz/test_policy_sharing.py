"""Keys whose key policies are the same document share one parsed policy, and keys with the
same facts share one static authorization context, so what the authorizer keeps grows with
the distinct policies, not with the keys; sharing never lets one key's policy or ARN decide
for another."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from strongroom.authz.context_keys import key_context
from strongroom.authz.decision import Authorizer
from strongroom.authz.evaluate import Reason
from strongroom.authz.policy import PolicyKind, default_key_policy
from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Caller, Key, Principal

from .._keys import ACCOUNT, ARN, symmetric_key

pytestmark = pytest.mark.unit

ROOT = Caller(
    Principal(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "root", "root"),
    "AKIA",
    "us-east-1",
    "10.0.0.1",
    "ua",
    (),
)


def _key(n: int, policy: str) -> Key:
    key_id = f"00000000-0000-4000-8000-{n:012d}"
    # A new string object per key, as each database row gives its own.
    text = policy[:1] + policy[1:]
    return replace(symmetric_key(text), arn=ARN.rsplit("/", 1)[0] + "/" + key_id)


def test_keys_with_the_same_policy_document_share_one_parsed_policy() -> None:
    authz = Authorizer()
    keys = [_key(i, default_key_policy(ACCOUNT)) for i in range(1000)]
    assert keys[0].policy is not keys[1].policy
    for key in keys:
        assert authz.decide(ROOT, "Encrypt", key).allowed
    first = authz.policies.get(PolicyKind.KEY, keys[0].policy)
    assert authz.policies.get(PolicyKind.KEY, keys[999].policy) is first
    assert authz.sizes() == {
        "policies": 1,
        "principals": 1,
        "identity_policies": 0,
        "static_contexts": 1,
        "decisions": 1000,  # one a key: its ARN is in the decision (and its denial's text)
    }
    # One scan of the policy serves every key: none of its statements names a resource.
    assert first.any_resource and len(first.scans) == 1


def test_a_policy_change_on_one_key_leaves_the_other_keys_policy_alone() -> None:
    authz = Authorizer()
    default = default_key_policy(ACCOUNT)
    one, two = _key(1, default), _key(2, default)
    assert authz.decide(ROOT, "Encrypt", one).allowed
    assert authz.decide(ROOT, "Encrypt", two).allowed
    shared = authz.policies.get(PolicyKind.KEY, default)
    deny = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ACCOUNT},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
            ],
        }
    )
    two = replace(two, policy=deny)  # PutKeyPolicy on the second key
    denied = authz.decide(ROOT, "Encrypt", two)
    assert not denied.allowed and denied.reason is Reason.EXPLICIT_DENY_KEY_POLICY
    assert authz.decide(ROOT, "Encrypt", one).allowed
    assert authz.policies.get(PolicyKind.KEY, one.policy) is shared
    assert authz.sizes()["policies"] == 2


def test_a_shared_policy_that_names_one_key_allows_only_that_key() -> None:
    authz = Authorizer()
    named = _key(1, "{}")
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": ACCOUNT},
                    "Action": "kms:*",
                    "Resource": named.arn,
                },
            ],
        }
    )
    one, two = _key(1, policy), _key(2, policy)
    assert authz.decide(ROOT, "Encrypt", one).allowed
    assert authz.decide(ROOT, "Encrypt", two).reason is Reason.NO_KEY_POLICY_ALLOW
    assert authz.decide(ROOT, "Encrypt", one).allowed
    parsed = authz.policies.get(PolicyKind.KEY, policy)
    assert not parsed.any_resource and len(parsed.scans) == 2


def test_keys_with_the_same_facts_have_the_same_static_context() -> None:
    base = _key(1, default_key_policy(ACCOUNT))
    same = _key(2, default_key_policy(ACCOUNT))
    assert key_context(base) == key_context(same)
    others = [
        replace(base, key_spec=KeySpec.HMAC_256, key_usage=KeyUsage.GENERATE_VERIFY_MAC),
        replace(base, multi_region=True, primary_region="us-east-1"),
        replace(base, multi_region=True, primary_region="eu-west-1"),
    ]
    authz = Authorizer()
    contexts = [authz.request_context(ROOT, k) for k in (base, *others)]
    assert len({json.dumps(sorted(c.items())) for c in contexts}) == 4
    for key in (base, same, *others):
        authz.decide(ROOT, "DescribeKey", key)
    assert authz.sizes()["static_contexts"] == 4
