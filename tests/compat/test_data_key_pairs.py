"""GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext with boto3: every key pair spec
the model lists, the private key sealed under a symmetric KMS key, AWS's errors."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mlkem, rsa

from ._support import DRY_RUN, KeyMaker, assert_kms_error, usage_error

pytestmark = pytest.mark.compat

# DataKeyPairSpec of the KMS model, less SM2 and ML_KEM_512 (refused by this server).
PAIR_SPECS = {
    "RSA_2048": (rsa.RSAPrivateKey, 2048),
    "RSA_3072": (rsa.RSAPrivateKey, 3072),
    "RSA_4096": (rsa.RSAPrivateKey, 4096),
    "ECC_NIST_P256": (ec.EllipticCurvePrivateKey, "secp256r1"),
    "ECC_NIST_P384": (ec.EllipticCurvePrivateKey, "secp384r1"),
    "ECC_NIST_P521": (ec.EllipticCurvePrivateKey, "secp521r1"),
    "ECC_SECG_P256K1": (ec.EllipticCurvePrivateKey, "secp256k1"),
    "ECC_NIST_EDWARDS25519": (ed25519.Ed25519PrivateKey, None),
    "ML_KEM_768": (mlkem.MLKEM768PrivateKey, None),
    "ML_KEM_1024": (mlkem.MLKEM1024PrivateKey, None),
}


def _spki(public: Any) -> bytes:
    return public.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_pair(spec: str, private_der: bytes, public_der: bytes) -> None:
    """The PKCS#8 private key is of ``spec`` and its public key is ``public_der``."""
    private: Any = serialization.load_der_private_key(private_der, password=None)
    kind, size = PAIR_SPECS[spec]
    assert isinstance(private, kind)
    if isinstance(private, rsa.RSAPrivateKey):
        assert private.key_size == size
    if isinstance(private, ec.EllipticCurvePrivateKey):
        assert private.curve.name == size
    assert _spki(private.public_key()) == public_der


@pytest.mark.parametrize("spec", list(PAIR_SPECS))
def test_data_key_pair_private_key_decrypts_and_matches_its_public_key(
    kms: Any, key: dict[str, Any], spec: str
) -> None:
    out = kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec=spec)
    assert out["KeyId"] == key["Arn"] and out["KeyPairSpec"] == spec
    assert len(out["KeyMaterialId"]) == 64
    _check_pair(spec, out["PrivateKeyPlaintext"], out["PublicKey"])
    opened = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"])
    assert opened["Plaintext"] == out["PrivateKeyPlaintext"]
    assert opened["KeyId"] == key["Arn"]


# One spec of each kind is enough here: making RSA_4096 pairs is slow, and the test above
# already makes one of every spec through the same code.
@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"])
def test_data_key_pair_without_plaintext_gives_only_the_sealed_private_key(
    kms: Any, key: dict[str, Any], spec: str
) -> None:
    out = kms.generate_data_key_pair_without_plaintext(
        KeyId=key["Arn"], KeyPairSpec=spec, EncryptionContext={"pair": spec}
    )
    assert "PrivateKeyPlaintext" not in out
    assert out["KeyId"] == key["Arn"] and out["KeyPairSpec"] == spec
    private = kms.decrypt(
        CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"pair": spec}
    )["Plaintext"]
    _check_pair(spec, private, out["PublicKey"])


def test_each_data_key_pair_is_new(kms: Any, key: dict[str, Any]) -> None:
    publics = {
        kms.generate_data_key_pair(KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256")["PublicKey"]
        for _ in range(3)
    }
    assert len(publics) == 3


def test_sealed_private_key_needs_its_encryption_context(kms: Any, key: dict[str, Any]) -> None:
    out = kms.generate_data_key_pair(
        KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256", EncryptionContext={"a": "b"}
    )
    # Recorded against AWS: test_encryption_context_generate_data_key_pair (LocalStack).
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decrypt,
        message="",
        CiphertextBlob=out["PrivateKeyCiphertextBlob"],
    )
    opened = kms.decrypt(
        CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"a": "b"}
    )
    assert opened["Plaintext"] == out["PrivateKeyPlaintext"]


@pytest.mark.parametrize("spec", ["SM2", "ML_KEM_512"])
def test_data_key_pair_of_a_refused_spec_fails_with_unsupported_operation_naming_it(
    kms: Any, key: dict[str, Any], spec: str
) -> None:
    for call in (kms.generate_data_key_pair, kms.generate_data_key_pair_without_plaintext):
        response = assert_kms_error(
            "UnsupportedOperationException", call, KeyId=key["KeyId"], KeyPairSpec=spec
        )
        assert f"KeyPairSpec {spec} " in response["Error"]["Message"]


@pytest.mark.parametrize(
    "operation", ["GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"]
)
def test_data_key_pair_under_an_asymmetric_or_hmac_key_fails_with_invalid_key_usage(
    kms: Any, key_of: KeyMaker, operation: str
) -> None:
    call = (
        kms.generate_data_key_pair
        if operation == "GenerateDataKeyPair"
        else kms.generate_data_key_pair_without_plaintext
    )
    rsa_key = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    assert_kms_error(
        "InvalidKeyUsageException",
        call,
        message=f"{rsa_key['Arn']} key KeySpec is RSA_2048 which is not valid for {operation}.",
        KeyId=rsa_key["KeyId"],
        KeyPairSpec="ECC_NIST_P256",
    )
    for spec, usage in (("HMAC_256", "GENERATE_VERIFY_MAC"), ("ECC_NIST_P256", "SIGN_VERIFY")):
        meta = key_of(spec, usage)
        assert_kms_error(
            "InvalidKeyUsageException",
            call,
            message=usage_error(meta["Arn"], usage, operation),
            KeyId=meta["KeyId"],
            KeyPairSpec="ECC_NIST_P256",
        )


def test_data_key_pair_under_disabled_key_fails_with_disabled(kms: Any) -> None:
    meta = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=meta["KeyId"])
    assert_kms_error(
        "DisabledException",
        kms.generate_data_key_pair,
        message=f"{meta['Arn']} is disabled.",
        KeyId=meta["KeyId"],
        KeyPairSpec="ECC_NIST_P256",
    )


def test_data_key_pair_honours_dry_run(kms: Any, key: dict[str, Any]) -> None:
    # Recorded against AWS: test_generate_data_key_pair_dry_run and
    # test_generate_data_key_pair_without_plaintext_dry_run (LocalStack snapshot
    # tests/aws/services/kms/test_kms.snapshot.json): HTTP 400, not the API reference's 412.
    for call in (kms.generate_data_key_pair, kms.generate_data_key_pair_without_plaintext):
        response = assert_kms_error(
            "DryRunOperationException",
            call,
            message=DRY_RUN,
            KeyId=key["KeyId"],
            KeyPairSpec="RSA_2048",
            DryRun=True,
        )
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_data_key_pair_refuses_a_recipient(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "UnsupportedOperationException",
        kms.generate_data_key_pair,
        KeyId=key["KeyId"],
        KeyPairSpec="ECC_NIST_P256",
        # No AttestationDocument: a blob nested in the request stops the audit writer
        # (audit/events.py scrubs top-level blobs only; reported to the lead).
        Recipient={"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"},
    )
