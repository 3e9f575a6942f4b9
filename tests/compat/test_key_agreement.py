"""DeriveSharedSecret with boto3: ECDH between a KMS key and a key pair held elsewhere, and
AWS's errors."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ._support import DRY_RUN, NIST_EC_SPECS, KeyMaker, assert_kms_error, usage_error

pytestmark = pytest.mark.compat

CURVES = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1,
}
FIELD_BYTES = {"ECC_NIST_P256": 32, "ECC_NIST_P384": 48, "ECC_NIST_P521": 66}


def _spki(public: Any) -> bytes:
    return public.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("spec", NIST_EC_SPECS)
def test_shared_secret_equals_the_one_the_other_side_computes(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = key_of(spec, "KEY_AGREEMENT")
    bob = ec.generate_private_key(CURVES[spec]())
    out = kms.derive_shared_secret(
        KeyId=meta["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=_spki(bob.public_key())
    )
    assert out["KeyId"] == meta["Arn"]
    assert out["KeyAgreementAlgorithm"] == "ECDH"
    assert out["KeyOrigin"] == "AWS_KMS"
    # Bob needs nothing but the public key GetPublicKey gives out.
    alice_public = serialization.load_der_public_key(
        kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"]
    )
    assert isinstance(alice_public, ec.EllipticCurvePublicKey)
    expected = bob.exchange(ec.ECDH(), alice_public)
    assert out["SharedSecret"] == expected
    assert len(expected) == FIELD_BYTES[spec]


def test_two_kms_keys_derive_the_same_secret(kms: Any, key_of: KeyMaker) -> None:
    alice = key_of("ECC_NIST_P384", "KEY_AGREEMENT")
    bob = kms.create_key(KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    secrets = {
        kms.derive_shared_secret(
            KeyId=mine["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=kms.get_public_key(KeyId=theirs["KeyId"])["PublicKey"],
        )["SharedSecret"]
        for mine, theirs in ((alice, bob), (bob, alice))
    }
    assert len(secrets) == 1


def test_peer_key_on_another_curve_or_of_another_kind_fails_with_validation(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("ECC_NIST_P256", "KEY_AGREEMENT")
    for peer in (
        _spki(ec.generate_private_key(ec.SECP384R1()).public_key()),
        _spki(ec.generate_private_key(ec.SECP256K1()).public_key()),
        _spki(ed25519.Ed25519PrivateKey.generate().public_key()),
        _spki(rsa.generate_private_key(65537, 2048).public_key()),
    ):
        assert_kms_error(
            "ValidationException",
            kms.derive_shared_secret,
            KeyId=meta["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=peer,
        )


def test_peer_key_that_does_not_parse_fails_with_validation_without_text(
    kms: Any, key_of: KeyMaker
) -> None:
    # Recorded against AWS: LocalStack's snapshot "response-invalid-public-key" of
    # test_derive_shared_secret (tests/aws/services/kms/test_kms.snapshot.json), PublicKey
    # b"InvalidPublicKey": ValidationException, Message "" (the body has no message).
    meta = key_of("ECC_NIST_P256", "KEY_AGREEMENT")
    for peer in (b"InvalidPublicKey", b"not a public key"):
        response = assert_kms_error(
            "ValidationException",
            kms.derive_shared_secret,
            message="",
            KeyId=meta["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=peer,
        )
        assert "message" not in response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_derive_shared_secret_with_keys_of_other_usages_fails_with_aws_message(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    signer = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    peer = _spki(ec.generate_private_key(ec.SECP256R1()).public_key())
    # "... key usage is ENCRYPT_DECRYPT which is not valid for DeriveSharedSecret." is recorded
    # against AWS (shared/reference/aws-kms-behaviour.md §1); SIGN_VERIFY follows it.
    for meta, usage in ((key, "ENCRYPT_DECRYPT"), (signer, "SIGN_VERIFY")):
        assert_kms_error(
            "InvalidKeyUsageException",
            kms.derive_shared_secret,
            message=usage_error(meta["Arn"], usage, "DeriveSharedSecret"),
            KeyId=meta["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=peer,
        )


def test_derive_shared_secret_with_disabled_key_fails_with_disabled(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    kms.disable_key(KeyId=meta["KeyId"])
    assert_kms_error(
        "DisabledException",
        kms.derive_shared_secret,
        message=f"{meta['Arn']} is disabled.",
        KeyId=meta["KeyId"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=_spki(ec.generate_private_key(ec.SECP256R1()).public_key()),
    )


def test_derive_shared_secret_honours_dry_run_and_refuses_a_recipient(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("ECC_NIST_P256", "KEY_AGREEMENT")
    arguments = {
        "KeyId": meta["KeyId"],
        "KeyAgreementAlgorithm": "ECDH",
        "PublicKey": _spki(ec.generate_private_key(ec.SECP256R1()).public_key()),
    }
    response = assert_kms_error(
        "DryRunOperationException",
        kms.derive_shared_secret,
        message=DRY_RUN,
        DryRun=True,
        **arguments,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert_kms_error(
        "UnsupportedOperationException",
        kms.derive_shared_secret,
        # No AttestationDocument: a blob nested in the request stops the audit writer
        # (audit/events.py scrubs top-level blobs only; reported to the lead).
        Recipient={"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
        **arguments,
    )
