"""Grants allow their grantee the listed operations, within their encryption-context
constraints, as KMS's grant documentation says."""

from __future__ import annotations

import pytest

from strongroom.authz.evaluate import RequestPrincipal
from strongroom.authz.grants import GrantRule, grants_allow, invalid_grant_operations
from strongroom.domain.enums import KeySpec, KeyUsage

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
