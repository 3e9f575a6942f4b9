"""The usage table: which key each cryptographic operation takes, with AWS's errors."""

from __future__ import annotations

import pytest

from strongroom.domain.enums import KeySpec, KeyState, KeyUsage
from strongroom.domain.errors import InvalidKeyUsageException, UnsupportedOperationException
from strongroom.domain.models import Key
from strongroom.domain.operations import OPERATIONS, check_usage

from .._keys import ARN, symmetric_key

pytestmark = pytest.mark.unit

S = KeySpec
U = KeyUsage


def key_of(spec: KeySpec, usage: KeyUsage) -> Key:
    return symmetric_key().evolve(key_spec=spec, key_usage=usage)


@pytest.mark.parametrize(
    ("operation", "spec", "usage"),
    [
        ("Encrypt", S.SYMMETRIC_DEFAULT, U.ENCRYPT_DECRYPT),
        ("Encrypt", S.RSA_2048, U.ENCRYPT_DECRYPT),
        ("GenerateDataKey", S.SYMMETRIC_DEFAULT, U.ENCRYPT_DECRYPT),
        ("GenerateDataKeyPair", S.SYMMETRIC_DEFAULT, U.ENCRYPT_DECRYPT),
        ("Sign", S.ECC_NIST_P256, U.SIGN_VERIFY),
        ("GenerateMac", S.HMAC_256, U.GENERATE_VERIFY_MAC),
        ("DeriveSharedSecret", S.ECC_NIST_P384, U.KEY_AGREEMENT),
        ("GetPublicKey", S.RSA_4096, U.ENCRYPT_DECRYPT),
        ("GetPublicKey", S.ECC_NIST_P521, U.KEY_AGREEMENT),
        ("GetPublicKey", S.ML_DSA_65, U.SIGN_VERIFY),
        ("GetPublicKey", S.ML_KEM_768, U.ENCAPSULATE_DECAPSULATE),
        ("Encapsulate", S.ML_KEM_768, U.ENCAPSULATE_DECAPSULATE),
        ("Decapsulate", S.ML_KEM_1024, U.ENCAPSULATE_DECAPSULATE),
    ],
)
def test_keys_of_the_right_usage_and_spec_pass(
    operation: str, spec: KeySpec, usage: KeyUsage
) -> None:
    check_usage(operation, key_of(spec, usage))


def test_wrong_usage_fails_in_aws_words() -> None:
    with pytest.raises(InvalidKeyUsageException) as info:
        check_usage("Sign", key_of(S.HMAC_256, U.GENERATE_VERIFY_MAC))
    assert (
        info.value.message == f"{ARN} key usage is GENERATE_VERIFY_MAC which is not valid for Sign."
    )


@pytest.mark.parametrize("operation", ["Encapsulate", "Decapsulate"])
def test_encapsulation_needs_an_encapsulate_decapsulate_key(operation: str) -> None:
    with pytest.raises(InvalidKeyUsageException) as info:
        check_usage(operation, key_of(S.ECC_NIST_P256, U.KEY_AGREEMENT))
    assert info.value.message == (
        f"{ARN} key usage is KEY_AGREEMENT which is not valid for {operation}."
    )


@pytest.mark.parametrize(
    "operation",
    [
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    ],
)
def test_data_keys_need_a_symmetric_encryption_key(operation: str) -> None:
    with pytest.raises(InvalidKeyUsageException) as info:
        check_usage(operation, key_of(S.RSA_2048, U.ENCRYPT_DECRYPT))
    assert info.value.message == (
        f"{ARN} key KeySpec is RSA_2048 which is not valid for {operation}."
    )


def test_get_public_key_of_a_symmetric_or_hmac_key_fails() -> None:
    with pytest.raises(UnsupportedOperationException):
        check_usage("GetPublicKey", key_of(S.SYMMETRIC_DEFAULT, U.ENCRYPT_DECRYPT))
    with pytest.raises(InvalidKeyUsageException):
        check_usage("GetPublicKey", key_of(S.HMAC_224, U.GENERATE_VERIFY_MAC))


def test_every_operation_of_the_usage_table_has_a_key_state_row() -> None:
    for operation, rule in OPERATIONS.items():
        if rule.usage is not None:
            assert KeyState.DISABLED in rule.states, operation
