"""Policy documents parse into records, and malformed ones are refused with a precise message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.authz.policy import (
    MAX_POLICY_BYTES,
    Effect,
    PolicyKind,
    default_key_policy,
    named_principals,
    parse_policy,
)
from strongroom.domain.errors import LimitExceededException, MalformedPolicyDocumentException

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).parents[2] / "vectors" / "authz" / "malformed_policies.json"
MALFORMED: list[dict[str, Any]] = json.loads(VECTORS.read_text())["cases"]
ROOT = "arn:aws:iam::111122223333:root"
KEY_ARN = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def key_policy(*statements: dict[str, Any], version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def allow(**elements: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": ROOT},
        "Action": "kms:*",
        "Resource": "*",
    }
    statement.update(elements)
    return {k: v for k, v in statement.items() if v is not None}


@pytest.mark.parametrize("case", MALFORMED, ids=[c["name"] for c in MALFORMED])
def test_malformed_policy_is_refused_with_what_and_where(case: dict[str, Any]) -> None:
    raw = case["policy"]
    text = raw if isinstance(raw, str) else json.dumps(raw)
    with pytest.raises(MalformedPolicyDocumentException) as info:
        parse_policy(text, PolicyKind(case["kind"]))
    assert case["message"] in info.value.message


def test_default_key_policy_parses_to_the_root_statement() -> None:
    policy = parse_policy(default_key_policy("111122223333"))
    assert policy.version == "2012-10-17"
    assert policy.id == "key-default-1"
    (st,) = policy.statements
    assert st.sid == "Enable IAM User Permissions"
    assert st.effect is Effect.ALLOW
    assert st.principal is not None
    assert st.principal.aws == frozenset({ROOT})
    assert st.matches_action("kms:Encrypt")
    assert st.matches_resource(KEY_ARN)


def test_statement_may_be_a_single_object() -> None:
    text = json.dumps({"Version": "2012-10-17", "Statement": allow()})
    assert len(parse_policy(text).statements) == 1


def test_missing_version_means_2008_without_policy_variables() -> None:
    policy = parse_policy(json.dumps({"Statement": [allow()]}))
    assert policy.version == "2008-10-17"
    assert not policy.variables


def test_account_id_principal_becomes_root_arn() -> None:
    st = parse_policy(key_policy(allow(Principal={"AWS": "111122223333"}))).statements[0]
    assert st.principal is not None
    assert st.principal.aws == frozenset({ROOT})


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*", ROOT]}])
def test_star_principal_means_anyone(principal: object) -> None:
    st = parse_policy(key_policy(allow(Principal=principal))).statements[0]
    assert st.principal is not None
    assert st.principal.anyone


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:user/division/team/alice",
        "arn:aws:iam::111122223333:role/KeyUser",
        "arn:aws:sts::111122223333:assumed-role/KeyUser/session-1",
        "arn:aws:sts::111122223333:federated-user/bob",
        "arn:aws-us-gov:iam::111122223333:root",
    ],
)
def test_principal_arn_forms_are_accepted(arn: str) -> None:
    st = parse_policy(key_policy(allow(Principal={"AWS": arn}))).statements[0]
    assert st.principal is not None
    assert st.principal.aws == frozenset({arn})


def test_service_principal_is_accepted() -> None:
    st = parse_policy(
        key_policy(allow(Principal={"Service": ["logs.us-west-2.amazonaws.com"]}))
    ).statements[0]
    assert st.principal is not None
    assert st.principal.services == frozenset({"logs.us-west-2.amazonaws.com"})


def test_statement_without_action_is_accepted_but_never_matches() -> None:
    st = parse_policy(key_policy(allow(Action=None))).statements[0]
    assert not st.matches_action("kms:Encrypt")


def test_statement_without_resource_is_accepted_but_never_matches() -> None:
    st = parse_policy(key_policy(allow(Resource=None))).statements[0]
    assert not st.matches_resource(KEY_ARN)


@pytest.mark.parametrize(
    ("actions", "action", "expected"),
    [
        ("kms:*", "kms:ScheduleKeyDeletion", True),
        ("*", "kms:Encrypt", True),
        ("kms:Encrypt", "kms:Encrypt", True),
        ("KMS:encrypt", "kms:Encrypt", True),
        ("kms:Gen*", "kms:GenerateDataKeyPair", True),
        ("kms:Gen*", "kms:Encrypt", False),
        (["kms:Describe*", "kms:List*"], "kms:ListGrants", True),
        ("kms:ReEncrypt*", "kms:ReEncryptFrom", True),
        ("kms:Encrypt", "kms:EncryptX", False),
        ("s3:*", "kms:Encrypt", False),
    ],
)
def test_action_patterns(actions: object, action: str, expected: bool) -> None:
    st = parse_policy(key_policy(allow(Action=actions))).statements[0]
    assert st.matches_action(action) is expected


def test_not_action_matches_every_other_action() -> None:
    st = parse_policy(key_policy(allow(Action=None, NotAction="kms:ScheduleKeyDeletion")))
    statement = st.statements[0]
    assert statement.matches_action("kms:Decrypt")
    assert not statement.matches_action("kms:ScheduleKeyDeletion")


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ("*", True),
        (KEY_ARN, True),
        ("arn:aws:kms:us-west-2:111122223333:key/*", True),
        ("arn:aws:kms:*:111122223333:key/*", True),
        ("arn:aws:kms:us-east-1:111122223333:key/*", False),
        ("arn:aws:kms:us-west-2:111122223333:KEY/*", False),
    ],
)
def test_resource_patterns_are_case_sensitive_wildcards(resources: str, expected: bool) -> None:
    st = parse_policy(key_policy(allow(Resource=resources))).statements[0]
    assert st.matches_resource(KEY_ARN) is expected


def test_not_resource_matches_every_other_resource() -> None:
    st = parse_policy(key_policy(allow(Resource=None, NotResource=KEY_ARN))).statements[0]
    assert not st.matches_resource(KEY_ARN)
    assert st.matches_resource(KEY_ARN.replace("1234abcd", "9999abcd"))


def test_condition_keys_are_stored_lower_case_and_values_as_text() -> None:
    condition = {
        "Bool": {"kms:GrantIsForAWSResource": True},
        "NumericLessThanEquals": {"kms:RotationPeriodInDays": 365},
    }
    st = parse_policy(key_policy(allow(Condition=condition))).statements[0]
    assert [(c.key, c.values) for c in st.conditions] == [
        ("kms:grantisforawsresource", ("true",)),
        ("kms:rotationperiodindays", ("365",)),
    ]


def test_identity_policy_has_no_principal() -> None:
    text = key_policy(allow(Principal=None))
    policy = parse_policy(text, PolicyKind.IDENTITY)
    assert policy.kind is PolicyKind.IDENTITY
    assert policy.statements[0].principal is None


def test_policy_of_exactly_the_limit_is_accepted() -> None:
    text = key_policy(allow())
    padded = text + " " * (MAX_POLICY_BYTES - len(text.encode()))
    assert len(padded.encode()) == MAX_POLICY_BYTES
    parse_policy(padded)


def test_policy_over_the_limit_is_limit_exceeded() -> None:
    text = key_policy(allow())
    padded = text + " " * (MAX_POLICY_BYTES + 1 - len(text.encode()))
    with pytest.raises(LimitExceededException, match="32768"):
        parse_policy(padded)


@pytest.mark.parametrize("bad", ["\u0100", "\x01", "\u2603", "\x7f\u0000"])
def test_characters_outside_the_policy_pattern_are_malformed(bad: str) -> None:
    # json.dumps would escape the character; put it into the raw text literally.
    text = key_policy(allow(Sid="x-PLACEHOLDER")).replace("PLACEHOLDER", bad)
    assert bad in text
    with pytest.raises(MalformedPolicyDocumentException, match="outside the allowed set"):
        parse_policy(text)


def test_latin_1_tabs_and_newlines_are_allowed() -> None:
    text = '{\n\t"Statement": [{"Sid": "Clé für Ünïcode", "Effect": "Allow",\r\n'
    text += '"Principal": "*", "Action": "kms:*", "Resource": "*"}]}'
    assert parse_policy(text).statements[0].sid == "Clé für Ünïcode"


def test_empty_policy_is_malformed() -> None:
    with pytest.raises(MalformedPolicyDocumentException, match="empty"):
        parse_policy("")


def test_named_principals_lists_every_aws_principal() -> None:
    text = key_policy(
        allow(Principal={"AWS": ["111122223333", "arn:aws:iam::444455556666:user/bob"]}),
        allow(Principal="*"),
        allow(Principal=None, NotPrincipal={"AWS": "arn:aws:iam::111122223333:role/Admin"}),
    )
    assert named_principals(parse_policy(text)) == {
        ROOT,
        "arn:aws:iam::444455556666:user/bob",
        "arn:aws:iam::111122223333:role/Admin",
    }
