"""Condition operators answer as IAM's condition-operator reference says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.authz.conditions import (
    BASE_OPERATORS,
    ConditionClause,
    SetQualifier,
    glob_regex,
    parse_date,
    parse_operator,
    substitute,
)
from strongroom.authz.policy import PolicyKind, parse_policy

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).parents[2] / "vectors" / "authz" / "conditions.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text())["cases"]


def clauses_of(condition: dict[str, Any]) -> tuple[ConditionClause, ...]:
    """Parse a Condition block the way a policy does (one identity-policy statement)."""
    doc = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": condition,
        },
    }
    return parse_policy(json.dumps(doc), PolicyKind.IDENTITY).statements[0].conditions


def context_of(raw: dict[str, Any]) -> dict[str, str | tuple[str, ...]]:
    return {k.lower(): (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_condition_vector(case: dict[str, Any]) -> None:
    context = context_of(case["context"])
    assert all(c.test(context) for c in clauses_of(case["condition"])) is case["expected"]


def test_every_operator_has_a_positive_and_a_negative_vector() -> None:
    outcomes: dict[str, set[bool]] = {}
    for case in CASES:
        for op in case["condition"]:
            parsed = parse_operator(op)
            assert parsed is not None
            name = "null" if parsed.base is None else parsed.base.name.lower()
            outcomes.setdefault(name, set()).add(case["expected"])
    missing = {name for name in [*BASE_OPERATORS, "null"] if outcomes.get(name) != {True, False}}
    assert not missing, missing


@pytest.mark.parametrize(
    ("text", "qualifier", "if_exists", "base"),
    [
        ("StringEquals", None, False, "StringEquals"),
        ("ForAnyValue:StringLike", SetQualifier.FOR_ANY_VALUE, False, "StringLike"),
        (
            "ForAllValues:StringEqualsIgnoreCase",
            SetQualifier.FOR_ALL_VALUES,
            False,
            "StringEqualsIgnoreCase",
        ),
        ("NumericLessThanIfExists", None, True, "NumericLessThan"),
        ("ForAllValues:ArnLikeIfExists", SetQualifier.FOR_ALL_VALUES, True, "ArnLike"),
        ("Null", None, False, None),
    ],
)
def test_parse_operator_splits_qualifier_base_and_if_exists(
    text: str, qualifier: SetQualifier | None, if_exists: bool, base: str | None
) -> None:
    op = parse_operator(text)
    assert op is not None
    assert op.qualifier is qualifier
    assert op.if_exists is if_exists
    assert (op.base.name if op.base else None) == base


@pytest.mark.parametrize(
    "text", ["StringEqualz", "ForSomeValues:StringEquals", "NullIfExists", "IfExists", ""]
)
def test_parse_operator_rejects_unknown_operators(text: str) -> None:
    assert parse_operator(text) is None


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("kms:*", "kms:Encrypt", True),
        ("kms:Gen*", "kms:GenerateDataKey", True),
        ("kms:Gen*", "kms:Decrypt", False),
        ("kms:?ecrypt", "kms:Decrypt", True),
        ("kms:?ecrypt", "kms:Encrypt", False),
        ("a+b", "a+b", True),
        ("a+b", "aab", False),
    ],
)
def test_glob_regex(pattern: str, value: str, expected: bool) -> None:
    assert (glob_regex(pattern).fullmatch(value) is not None) is expected


def test_glob_regex_ignore_case() -> None:
    assert glob_regex("KMS:ENCRYPT", ignore_case=True).fullmatch("kms:Encrypt")
    assert not glob_regex("KMS:ENCRYPT").fullmatch("kms:Encrypt")


@pytest.mark.parametrize(
    "text",
    ["2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", "1767225600"],
)
def test_parse_date_accepts_iso_8601_and_epoch(text: str) -> None:
    parsed = parse_date(text)
    assert parsed is not None
    assert parsed.timestamp() == 1767225600


def test_parse_date_rejects_garbage() -> None:
    assert parse_date("yesterday") is None


def test_substitute_leaves_unresolved_as_none() -> None:
    assert substitute("${aws:username}", {}) is None
    assert substitute("x-${aws:username}", {"aws:username": "alice"}) == "x-alice"
    assert substitute("${$}{literal}", {}) == "${literal}"


def test_version_2008_has_no_policy_variables() -> None:
    doc = {
        "Version": "2008-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:Owner": "${aws:username}"}},
        },
    }
    policy = parse_policy(json.dumps(doc), PolicyKind.IDENTITY)
    st = policy.statements[0]
    literal = {"kms:encryptioncontext:owner": "${aws:username}", "aws:username": "alice"}
    assert not policy.variables
    (clause,) = st.conditions
    assert clause.literal_test(literal)
    assert not clause.literal_test({**literal, "kms:encryptioncontext:owner": "alice"})
