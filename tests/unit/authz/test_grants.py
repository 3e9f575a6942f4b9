"""Grants allow their grantee the listed operations, within their encryption-context
constraints; child grants are narrower; the grant says who may retire it: as KMS's grant
documentation says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.authz.evaluate import RequestPrincipal
from strongroom.authz.grants import (
    CONTEXT_OPERATIONS,
    GRANT_OPERATIONS,
    GrantRule,
    KeyGrants,
    grant_context,
    grants_allow,
    invalid_grant_operations,
    may_create_child,
    may_retire,
    rule_of,
    takes_constraints,
)
from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.models import Grant

pytestmark = pytest.mark.unit

ALICE = RequestPrincipal.from_arn("arn:aws:iam::111122223333:user/alice")
BOB = RequestPrincipal.from_arn("arn:aws:iam::444455556666:user/bob")
SESSION = RequestPrincipal.from_arn("arn:aws:sts::111122223333:assumed-role/Worker/job-7")
DECRYPT = frozenset({"Decrypt"})


def grant(
    grantee: str = ALICE.arn,
    operations: frozenset[str] = DECRYPT,
    encryption_context_equals: dict[str, str] | None = None,
    encryption_context_subset: dict[str, str] | None = None,
) -> GrantRule:
    return GrantRule(grantee, operations, encryption_context_equals, encryption_context_subset)


@pytest.mark.parametrize(
    ("rule", "principal", "operation", "context", "expected"),
    [
        (grant(), ALICE, "Decrypt", {}, True),
        (grant(), ALICE, "kms:Decrypt", {}, True),
        (grant(), ALICE, "Encrypt", {}, False),
        (grant(), BOB, "Decrypt", {}, False),
        (grant(grantee=BOB.arn), BOB, "Decrypt", {}, True),
        (grant(grantee="arn:aws:iam::111122223333:role/Worker"), SESSION, "Decrypt", {}, True),
        (grant(encryption_context_equals={"Dept": "IT"}), ALICE, "Decrypt", {"Dept": "IT"}, True),
        (grant(encryption_context_equals={"Dept": "IT"}), ALICE, "Decrypt", {"dept": "IT"}, True),
        (grant(encryption_context_equals={"Dept": "IT"}), ALICE, "Decrypt", {"Dept": "it"}, False),
        (
            grant(encryption_context_equals={"Dept": "IT"}),
            ALICE,
            "Decrypt",
            {"Dept": "IT", "Extra": "x"},
            False,
        ),
        (grant(encryption_context_equals={"Dept": "IT"}), ALICE, "Decrypt", {}, False),
        (
            grant(encryption_context_subset={"Dept": "IT"}),
            ALICE,
            "Decrypt",
            {"DEPT": "IT", "Extra": "x"},
            True,
        ),
        (grant(encryption_context_subset={"Dept": "IT"}), ALICE, "Decrypt", {"Extra": "x"}, False),
        (grant(encryption_context_subset={"Dept": "IT"}), ALICE, "Decrypt", {"Dept": "HR"}, False),
        # No encryption context in the operation (asymmetric key, DescribeKey): not applied.
        (grant(encryption_context_equals={"Dept": "IT"}), ALICE, "Decrypt", None, True),
    ],
)
def test_grant_allows(
    rule: GrantRule,
    principal: RequestPrincipal,
    operation: str,
    context: dict[str, str] | None,
    expected: bool,
) -> None:
    assert grants_allow([rule], principal, operation, context) is expected


def test_any_of_several_grants_may_allow() -> None:
    rules = [grant(operations=frozenset({"Encrypt"})), grant()]
    assert grants_allow(rules, ALICE, "Decrypt", {})
    assert not grants_allow([], ALICE, "Decrypt", {})


@pytest.mark.parametrize(
    ("usage", "spec", "operations", "invalid"),
    [
        (KeyUsage.ENCRYPT_DECRYPT, KeySpec.SYMMETRIC_DEFAULT, {"Decrypt", "GenerateDataKey"}, ()),
        (KeyUsage.ENCRYPT_DECRYPT, KeySpec.SYMMETRIC_DEFAULT, {"Sign", "Decrypt"}, ("Sign",)),
        (
            KeyUsage.ENCRYPT_DECRYPT,
            KeySpec.RSA_2048,
            {"GenerateDataKey", "GetPublicKey"},
            ("GenerateDataKey",),
        ),
        (KeyUsage.SIGN_VERIFY, KeySpec.ECC_NIST_P256, {"Sign", "Verify", "DescribeKey"}, ()),
        (KeyUsage.SIGN_VERIFY, KeySpec.ECC_NIST_P256, {"Encrypt"}, ("Encrypt",)),
        (
            KeyUsage.GENERATE_VERIFY_MAC,
            KeySpec.HMAC_256,
            {"GenerateMac", "GetPublicKey"},
            ("GetPublicKey",),
        ),
        (KeyUsage.KEY_AGREEMENT, KeySpec.ECC_NIST_P256, {"DeriveSharedSecret", "CreateGrant"}, ()),
    ],
)
def test_grant_operations_are_validated_against_the_key_type(
    usage: KeyUsage, spec: KeySpec, operations: set[str], invalid: tuple[str, ...]
) -> None:
    assert invalid_grant_operations(usage, spec, operations) == invalid


def test_constraint_context_is_the_request_s_only_for_context_operations_on_symmetric_keys() -> (
    None
):
    assert grant_context("Decrypt", True, None) == {}
    assert grant_context("kms:GenerateDataKey", True, {"a": "b"}) == {"a": "b"}
    assert grant_context("Decrypt", False, {"a": "b"}) is None  # asymmetric key
    assert grant_context("DescribeKey", True, {"a": "b"}) is None
    assert grant_context("CreateGrant", True, {"a": "b"}) is None
    assert GRANT_OPERATIONS["SYMMETRIC_ENCRYPTION"] >= CONTEXT_OPERATIONS


def test_a_constrained_request_without_context_fails_the_constraint() -> None:
    rule = grant(encryption_context_subset={"Dept": "IT"})
    assert not grants_allow([rule], ALICE, "Decrypt", grant_context("Decrypt", True, None))
    assert grants_allow([rule], ALICE, "Decrypt", grant_context("Decrypt", False, None))


def test_only_symmetric_encryption_keys_take_constraints() -> None:
    assert takes_constraints(KeyUsage.ENCRYPT_DECRYPT, KeySpec.SYMMETRIC_DEFAULT)
    assert not takes_constraints(KeyUsage.ENCRYPT_DECRYPT, KeySpec.RSA_2048)
    assert not takes_constraints(KeyUsage.GENERATE_VERIFY_MAC, KeySpec.HMAC_256)


SUBSET_IT = grant(
    operations=frozenset({"Decrypt", "CreateGrant"}), encryption_context_subset={"Dept": "IT"}
)
EQUALS_IT = grant(
    operations=frozenset({"Decrypt", "CreateGrant"}), encryption_context_equals={"Dept": "IT"}
)
PLAIN = grant(operations=frozenset({"Decrypt", "CreateGrant"}))


@pytest.mark.parametrize(
    ("parent", "operations", "equals", "subset", "expected"),
    [
        (PLAIN, {"Decrypt"}, None, None, True),
        (PLAIN, {"Decrypt", "Encrypt"}, None, None, False),
        (PLAIN, {"CreateGrant", "Decrypt"}, None, {"x": "y"}, True),
        (SUBSET_IT, {"Decrypt"}, None, None, False),
        (SUBSET_IT, {"Decrypt"}, None, {"Dept": "IT"}, True),
        (SUBSET_IT, {"Decrypt"}, None, {"dept": "IT", "Team": "a"}, True),
        (SUBSET_IT, {"Decrypt"}, None, {"Team": "a"}, False),
        (SUBSET_IT, {"Decrypt"}, None, {"Dept": "it"}, False),
        (SUBSET_IT, {"Decrypt"}, {"Dept": "IT", "Team": "a"}, None, True),
        (EQUALS_IT, {"Decrypt"}, {"DEPT": "IT"}, None, True),
        (EQUALS_IT, {"Decrypt"}, {"Dept": "IT", "Team": "a"}, None, False),
        (EQUALS_IT, {"Decrypt"}, None, {"Dept": "IT"}, False),
        (EQUALS_IT, {"Decrypt"}, None, None, False),
    ],
)
def test_child_grants_have_some_of_the_parent_s_operations_and_a_constraint_as_strict(
    parent: GrantRule,
    operations: set[str],
    equals: dict[str, str] | None,
    subset: dict[str, str] | None,
    expected: bool,
) -> None:
    assert may_create_child(parent, operations, equals, subset) is expected


@pytest.mark.parametrize(
    ("principal", "operations", "retiring", "expected"),
    [
        (BOB, DECRYPT, BOB.arn, True),  # the retiring principal
        (ALICE, DECRYPT, BOB.arn, False),  # the grantee, but RetireGrant is not granted
        (ALICE, frozenset({"Decrypt", "RetireGrant"}), None, True),
        (BOB, frozenset({"Decrypt", "RetireGrant"}), None, False),
        (SESSION, DECRYPT, "arn:aws:iam::111122223333:role/Worker", True),  # a role's session
    ],
)
def test_the_grant_names_who_may_retire_it(
    principal: RequestPrincipal, operations: frozenset[str], retiring: str | None, expected: bool
) -> None:
    allowed = may_retire(
        principal, grantee_principal=ALICE.arn, operations=operations, retiring_principal=retiring
    )
    assert allowed is expected


def test_key_grants_index_by_grantee_and_grant_id() -> None:
    worker = grant(grantee="arn:aws:iam::111122223333:role/Worker")
    grants = KeyGrants({"a" * 64: grant(), "b" * 64: grant(grantee=BOB.arn), "c" * 64: worker})
    assert len(grants) == 3 and "a" * 64 in grants and "d" * 64 not in grants
    assert grants.of(ALICE) == [grant()]
    assert grants.of(SESSION) == [worker]
    assert grants.of(RequestPrincipal.from_arn("arn:aws:iam::111122223333:user/carol")) == []
    more = grants.with_rules({"d" * 64: grant(operations=frozenset({"Encrypt"}))})
    assert len(more) == 4 and len(grants) == 3
    assert grants_allow(more.of(ALICE), ALICE, "Encrypt", None)


def test_rule_of_a_grant_keeps_grantee_operations_and_constraint() -> None:
    stored = Grant(
        grant_id="a" * 64,
        key_arn="arn:aws:kms:us-east-1:111122223333:key/k",
        grantee_principal=ALICE.arn,
        operations=("Decrypt", "Encrypt"),
        issuing_account="arn:aws:iam::111122223333:root",
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
        encryption_context_subset={"Dept": "IT"},
    )
    assert rule_of(stored) == grant(
        operations=frozenset({"Decrypt", "Encrypt"}), encryption_context_subset={"Dept": "IT"}
    )
