"""Asymmetric and HMAC keys with boto3: CreateKey for every key spec and usage (and AWS's
refusals), DescribeKey's algorithm lists, GetPublicKey, RSA Encrypt/Decrypt/ReEncrypt, and
an audit trail that keeps the secrets of the new operations out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa

from conftest import run_strongroom, start_server, stop_server
from strongroom.crypto.wrap import material_aad
from strongroom.keystores.filekey import FileRootKey

from ._support import (
    ALGORITHM_MEMBERS,
    DRY_RUN,
    HMAC_SPECS,
    KEY_TYPES,
    RSA_OAEP_LIMITS,
    RSA_SPECS,
    KeyMaker,
    assert_kms_error,
    unique_alias,
    usage_error,
)

pytestmark = pytest.mark.compat

ALL_SPECS = sorted({spec for spec, _ in KEY_TYPES})
ALL_USAGES = [
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
    "ENCAPSULATE_DECAPSULATE",
]
ASYMMETRIC = [k for k in KEY_TYPES if k[0] not in (*HMAC_SPECS, "SYMMETRIC_DEFAULT")]
OAEP = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
OAEP_HASH = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}
KEY_USAGE_REQUIRED = (
    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
)
CONTEXT_REFUSED = (
    "EncryptionContext is not supported when encrypting/decrypting with asymmetric CMKs."
)
CURVES = {
    "ECC_NIST_P256": "secp256r1",
    "ECC_NIST_P384": "secp384r1",
    "ECC_NIST_P521": "secp521r1",
    "ECC_SECG_P256K1": "secp256k1",
}
ML_DSA_TYPES = {
    "ML_DSA_44": mldsa.MLDSA44PublicKey,
    "ML_DSA_65": mldsa.MLDSA65PublicKey,
    "ML_DSA_87": mldsa.MLDSA87PublicKey,
}
ML_KEM_TYPES = {
    "ML_KEM_768": mlkem.MLKEM768PublicKey,
    "ML_KEM_1024": mlkem.MLKEM1024PublicKey,
}


def _is_public_key_of(spec: str, public: Any) -> bool:
    if spec in RSA_SPECS:
        return isinstance(public, rsa.RSAPublicKey) and public.key_size == int(spec[4:])
    if spec in CURVES:
        return isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == CURVES[spec]
    if spec == "ECC_NIST_EDWARDS25519":
        return isinstance(public, ed25519.Ed25519PublicKey)
    return isinstance(public, {**ML_DSA_TYPES, **ML_KEM_TYPES}[spec])


def _oaep(algorithm: str) -> padding.OAEP:
    h = OAEP_HASH[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


def _public_key(kms: Any, key_id: str) -> Any:
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


# -- CreateKey and DescribeKey --------------------------------------------------------


@pytest.mark.parametrize(("spec", "usage"), list(KEY_TYPES))
def test_create_key_makes_every_spec_and_usage_with_its_algorithm_list(
    kms: Any, key_of: KeyMaker, spec: str, usage: str
) -> None:
    meta = key_of(spec, usage)
    member, algorithms = KEY_TYPES[(spec, usage)]
    for shown in (meta, kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]):
        assert shown["KeySpec"] == shown["CustomerMasterKeySpec"] == spec
        assert shown["KeyUsage"] == usage
        assert shown["KeyState"] == "Enabled" and shown["Enabled"] is True
        assert shown["Origin"] == "AWS_KMS"
        assert shown[member] == algorithms
        assert not (set(ALGORITHM_MEMBERS) - {member}) & set(shown), shown
        # "present for symmetric encryption keys" (KeyMetadata.CurrentKeyMaterialId doc)
        assert ("CurrentKeyMaterialId" in shown) == (spec == "SYMMETRIC_DEFAULT")


def test_create_key_takes_the_deprecated_customer_master_key_spec(kms: Any) -> None:
    meta = kms.create_key(CustomerMasterKeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")[
        "KeyMetadata"
    ]
    assert meta["KeySpec"] == "ECC_NIST_P256"
    assert meta["SigningAlgorithms"] == ["ECDSA_SHA_256"]


REFUSED = [
    (spec, usage) for spec in ALL_SPECS for usage in ALL_USAGES if (spec, usage) not in KEY_TYPES
]


@pytest.mark.parametrize(("spec", "usage"), REFUSED)
def test_create_key_with_usage_not_of_its_spec_fails_with_aws_message(
    kms: Any, spec: str, usage: str
) -> None:
    # Recorded against AWS: "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"
    assert_kms_error(
        "ValidationException",
        kms.create_key,
        message=f"KeyUsage {usage} is not compatible with KeySpec {spec}",
        KeySpec=spec,
        KeyUsage=usage,
    )


@pytest.mark.parametrize("spec", [s for s in ALL_SPECS if s != "SYMMETRIC_DEFAULT"])
def test_create_key_without_usage_fails_for_every_spec_but_symmetric(kms: Any, spec: str) -> None:
    assert_kms_error(
        "ValidationException", kms.create_key, message=KEY_USAGE_REQUIRED, KeySpec=spec
    )


@pytest.mark.parametrize("usage", ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"])
def test_create_key_of_sm2_fails_with_unsupported_operation_naming_it(kms: Any, usage: str) -> None:
    response = assert_kms_error(
        "UnsupportedOperationException", kms.create_key, KeySpec="SM2", KeyUsage=usage
    )
    assert "KeySpec SM2 is not supported" in response["Error"]["Message"]


def test_create_key_of_sm2_with_a_usage_it_never_has_fails_with_validation(kms: Any) -> None:
    assert_kms_error(
        "ValidationException",
        kms.create_key,
        message="KeyUsage GENERATE_VERIFY_MAC is not compatible with KeySpec SM2",
        KeySpec="SM2",
        KeyUsage="GENERATE_VERIFY_MAC",
    )


# -- GetPublicKey ---------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "usage"), ASYMMETRIC)
def test_get_public_key_returns_der_spki_of_the_spec_with_its_algorithms(
    kms: Any, key_of: KeyMaker, spec: str, usage: str
) -> None:
    meta = key_of(spec, usage)
    out = kms.get_public_key(KeyId=meta["KeyId"])
    assert out["KeyId"] == meta["Arn"]
    assert out["KeySpec"] == out["CustomerMasterKeySpec"] == spec
    assert out["KeyUsage"] == usage
    member, algorithms = KEY_TYPES[(spec, usage)]
    assert out[member] == algorithms
    assert not (set(ALGORITHM_MEMBERS) - {member}) & set(out)
    assert _is_public_key_of(spec, serialization.load_der_public_key(out["PublicKey"]))
    assert kms.get_public_key(KeyId=meta["Arn"])["PublicKey"] == out["PublicKey"]


def test_get_public_key_accepts_an_alias(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    alias = unique_alias("pub")
    kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    assert kms.get_public_key(KeyId=alias)["KeyId"] == meta["Arn"]


def test_get_public_key_of_symmetric_key_fails_with_unsupported_operation(
    kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error("UnsupportedOperationException", kms.get_public_key, KeyId=key["KeyId"])


def test_get_public_key_of_hmac_key_fails_with_invalid_key_usage(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.get_public_key,
        message=usage_error(meta["Arn"], "GENERATE_VERIFY_MAC", "GetPublicKey"),
        KeyId=meta["KeyId"],
    )


def test_get_public_key_of_disabled_key_fails_with_disabled(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.disable_key(KeyId=meta["KeyId"])
    assert_kms_error(
        "DisabledException",
        kms.get_public_key,
        message=f"{meta['Arn']} is disabled.",
        KeyId=meta["KeyId"],
    )


# -- Encrypt and Decrypt with RSA keys ------------------------------------------------

RSA_OAEP = [(spec, algorithm) for spec in RSA_SPECS for algorithm in OAEP]


@pytest.mark.parametrize(("spec", "algorithm"), RSA_OAEP)
def test_encrypt_with_rsa_key_gives_raw_oaep_ciphertext_that_decrypts(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str
) -> None:
    meta = key_of(spec, "ENCRYPT_DECRYPT")
    out = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"asymmetric", EncryptionAlgorithm=algorithm)
    assert out["KeyId"] == meta["Arn"]
    assert out["EncryptionAlgorithm"] == algorithm
    assert len(out["CiphertextBlob"]) == int(spec[4:]) // 8  # the RSA modulus, no header
    plain = kms.decrypt(
        CiphertextBlob=out["CiphertextBlob"], KeyId=meta["KeyId"], EncryptionAlgorithm=algorithm
    )
    assert plain["Plaintext"] == b"asymmetric"
    assert plain["KeyId"] == meta["Arn"]
    assert plain["EncryptionAlgorithm"] == algorithm
    assert "KeyMaterialId" not in plain  # "present only ... with a symmetric encryption key"


@pytest.mark.parametrize(("spec", "algorithm"), RSA_OAEP)
def test_ciphertext_made_outside_with_the_public_key_decrypts(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str
) -> None:
    meta = key_of(spec, "ENCRYPT_DECRYPT")
    public = _public_key(kms, meta["KeyId"])
    ciphertext = public.encrypt(b"made elsewhere", _oaep(algorithm))
    plain = kms.decrypt(CiphertextBlob=ciphertext, KeyId=meta["Arn"], EncryptionAlgorithm=algorithm)
    assert plain["Plaintext"] == b"made elsewhere"


@pytest.mark.parametrize(("spec", "algorithm"), RSA_OAEP)
def test_encrypt_takes_the_largest_plaintext_and_refuses_one_byte_more(
    kms: Any, key_of: KeyMaker, spec: str, algorithm: str
) -> None:
    meta = key_of(spec, "ENCRYPT_DECRYPT")
    limit = RSA_OAEP_LIMITS[(spec, algorithm)]
    data = os.urandom(limit)
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=data, EncryptionAlgorithm=algorithm)[
        "CiphertextBlob"
    ]
    assert (
        kms.decrypt(CiphertextBlob=blob, KeyId=meta["KeyId"], EncryptionAlgorithm=algorithm)[
            "Plaintext"
        ]
        == data
    )
    assert_kms_error(
        "ValidationException",
        kms.encrypt,
        message=f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than "
        f"{limit} bytes.",
        KeyId=meta["KeyId"],
        Plaintext=data + b"x",
        EncryptionAlgorithm=algorithm,
    )


def test_encrypt_with_rsa_key_without_algorithm_fails_as_aws_does(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    # Recorded against AWS (zalando/spring-cloud-config-aws-kms#82, for RSA_4096).
    message = "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        message=message,
        KeyId=meta["KeyId"],
        Plaintext=b"x",
    )
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.decrypt,
        message=message,
        CiphertextBlob=blob,
        KeyId=meta["KeyId"],
    )


def test_encrypt_with_rsa_key_and_an_algorithm_of_another_spec_fails(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        message="Algorithm SM2PKE is incompatible with key spec RSA_2048.",
        KeyId=meta["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm="SM2PKE",
    )


def test_encryption_context_with_rsa_key_is_refused(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    assert_kms_error(
        "ValidationException",
        kms.encrypt,
        message=CONTEXT_REFUSED,
        KeyId=meta["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm=OAEP[1],
        EncryptionContext={"purpose": "test"},
    )
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    assert_kms_error(
        "ValidationException",
        kms.decrypt,
        message=CONTEXT_REFUSED,
        CiphertextBlob=blob,
        KeyId=meta["KeyId"],
        EncryptionAlgorithm=OAEP[1],
        EncryptionContext={"purpose": "test"},
    )


def test_decrypt_of_rsa_ciphertext_without_key_id_fails_with_invalid_ciphertext(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    assert_kms_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob)


def test_decrypt_of_rsa_ciphertext_with_other_algorithm_or_key_fails_opaquely(
    kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    other = key_of("RSA_3072", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    for key_id, algorithm in ((meta["KeyId"], OAEP[0]), (other["KeyId"], OAEP[1])):
        assert_kms_error(
            "InvalidCiphertextException",
            kms.decrypt,
            message="",
            CiphertextBlob=blob,
            KeyId=key_id,
            EncryptionAlgorithm=algorithm,
        )
    flipped = bytes([blob[0] ^ 1]) + blob[1:]
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decrypt,
        CiphertextBlob=flipped,
        KeyId=meta["KeyId"],
        EncryptionAlgorithm=OAEP[1],
    )


def test_decrypt_of_symmetric_blob_naming_an_rsa_key_fails(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    rsa_key = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decrypt,
        CiphertextBlob=blob,
        KeyId=rsa_key["KeyId"],
        EncryptionAlgorithm=OAEP[0],
    )


@pytest.mark.parametrize(
    ("spec", "usage"),
    [
        ("HMAC_224", "GENERATE_VERIFY_MAC"),
        ("RSA_2048", "SIGN_VERIFY"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
    ],
)
def test_decrypt_of_a_blob_naming_a_key_of_another_usage_fails_with_incorrect_key(
    kms: Any, key_of: KeyMaker, key: dict[str, Any], spec: str, usage: str
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    # Recorded against AWS for an HMAC_224 key (LocalStack test_error_messaging_for_invalid_keys).
    assert_kms_error(
        "IncorrectKeyException",
        kms.decrypt,
        message="The key ID in the request does not identify a CMK that can perform this "
        "operation.",
        CiphertextBlob=blob,
        KeyId=key_of(spec, usage)["KeyId"],
    )


@pytest.mark.parametrize("usage", ["SIGN_VERIFY", "KEY_AGREEMENT", "GENERATE_VERIFY_MAC"])
def test_encrypt_with_a_key_of_another_usage_fails_with_aws_message(
    kms: Any, key_of: KeyMaker, usage: str
) -> None:
    spec = {"SIGN_VERIFY": "RSA_2048", "KEY_AGREEMENT": "ECC_NIST_P256"}.get(usage, "HMAC_256")
    meta = key_of(spec, usage)
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        message=usage_error(meta["Arn"], usage, "Encrypt"),
        KeyId=meta["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm=OAEP[1],
    )


def test_encrypt_and_decrypt_with_disabled_rsa_key_fail_with_disabled(kms: Any) -> None:
    meta = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    kms.disable_key(KeyId=meta["KeyId"])
    message = f"{meta['Arn']} is disabled."
    assert_kms_error(
        "DisabledException",
        kms.encrypt,
        message=message,
        KeyId=meta["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm=OAEP[1],
    )
    assert_kms_error(
        "DisabledException",
        kms.decrypt,
        message=message,
        CiphertextBlob=blob,
        KeyId=meta["KeyId"],
        EncryptionAlgorithm=OAEP[1],
    )


def test_encrypt_and_decrypt_with_rsa_key_honour_dry_run(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    response = assert_kms_error(
        "DryRunOperationException",
        kms.encrypt,
        message=DRY_RUN,
        KeyId=meta["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm=OAEP[1],
        DryRun=True,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # A request that would fail fails for its own reason, DryRun or not.
    assert_kms_error(
        "ValidationException",
        kms.encrypt,
        KeyId=meta["KeyId"],
        Plaintext=b"x" * 191,
        EncryptionAlgorithm=OAEP[1],
        DryRun=True,
    )
    blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    assert_kms_error(
        "DryRunOperationException",
        kms.decrypt,
        CiphertextBlob=blob,
        KeyId=meta["KeyId"],
        EncryptionAlgorithm=OAEP[1],
        DryRun=True,
    )


@pytest.mark.parametrize("operation", ["GenerateDataKey", "GenerateDataKeyWithoutPlaintext"])
def test_generate_data_key_with_rsa_key_fails_with_invalid_key_usage(
    kms: Any, key_of: KeyMaker, operation: str
) -> None:
    meta = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    call = getattr(
        kms,
        "generate_data_key"
        if operation == "GenerateDataKey"
        else "generate_data_key_without_plaintext",
    )
    assert_kms_error(
        "InvalidKeyUsageException",
        call,
        message=f"{meta['Arn']} key KeySpec is RSA_2048 which is not valid for {operation}.",
        KeyId=meta["KeyId"],
        KeySpec="AES_256",
    )


# -- ReEncrypt between symmetric and RSA keys -----------------------------------------


def test_re_encrypt_from_symmetric_to_rsa(kms: Any, key_of: KeyMaker, key: dict[str, Any]) -> None:
    dest = key_of("RSA_3072", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"to rsa", EncryptionContext={"a": "b"})[
        "CiphertextBlob"
    ]
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"a": "b"},
        DestinationKeyId=dest["KeyId"],
        DestinationEncryptionAlgorithm=OAEP[0],
    )
    assert out["SourceKeyId"] == key["Arn"] and out["KeyId"] == dest["Arn"]
    assert out["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert out["DestinationEncryptionAlgorithm"] == OAEP[0]
    assert "SourceKeyMaterialId" in out and "DestinationKeyMaterialId" not in out
    assert len(out["CiphertextBlob"]) == 384
    plain = kms.decrypt(
        CiphertextBlob=out["CiphertextBlob"], KeyId=dest["KeyId"], EncryptionAlgorithm=OAEP[0]
    )
    assert plain["Plaintext"] == b"to rsa"


def test_re_encrypt_from_rsa_to_symmetric(kms: Any, key_of: KeyMaker, key: dict[str, Any]) -> None:
    source = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    ciphertext = _public_key(kms, source["KeyId"]).encrypt(b"from rsa", _oaep(OAEP[1]))
    out = kms.re_encrypt(
        CiphertextBlob=ciphertext,
        SourceKeyId=source["KeyId"],
        SourceEncryptionAlgorithm=OAEP[1],
        DestinationKeyId=key["KeyId"],
        DestinationEncryptionContext={"to": "symmetric"},
    )
    assert out["SourceKeyId"] == source["Arn"] and out["KeyId"] == key["Arn"]
    assert out["SourceEncryptionAlgorithm"] == OAEP[1]
    assert out["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert "SourceKeyMaterialId" not in out and "DestinationKeyMaterialId" in out
    plain = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"to": "symmetric"})
    assert plain["Plaintext"] == b"from rsa"


def test_re_encrypt_from_rsa_to_rsa(kms: Any, key_of: KeyMaker) -> None:
    source = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    dest = key_of("RSA_3072", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=source["KeyId"], Plaintext=b"rsa to rsa", EncryptionAlgorithm=OAEP[0])[
        "CiphertextBlob"
    ]
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceKeyId=source["Arn"],
        SourceEncryptionAlgorithm=OAEP[0],
        DestinationKeyId=dest["Arn"],
        DestinationEncryptionAlgorithm=OAEP[1],
    )
    assert (out["SourceEncryptionAlgorithm"], out["DestinationEncryptionAlgorithm"]) == tuple(OAEP)
    plain = kms.decrypt(
        CiphertextBlob=out["CiphertextBlob"], KeyId=dest["KeyId"], EncryptionAlgorithm=OAEP[1]
    )
    assert plain["Plaintext"] == b"rsa to rsa"


def test_re_encrypt_to_rsa_refuses_context_missing_algorithm_and_long_plaintext(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    dest = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    short = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error(
        "ValidationException",
        kms.re_encrypt,
        message=CONTEXT_REFUSED,
        CiphertextBlob=short,
        DestinationKeyId=dest["KeyId"],
        DestinationEncryptionAlgorithm=OAEP[1],
        DestinationEncryptionContext={"a": "b"},
    )
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.re_encrypt,
        message="Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.",
        CiphertextBlob=short,
        DestinationKeyId=dest["KeyId"],
    )
    long = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"y" * 191)["CiphertextBlob"]
    assert_kms_error(
        "ValidationException",
        kms.re_encrypt,
        message="Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger "
        "than 190 bytes.",
        CiphertextBlob=long,
        DestinationKeyId=dest["KeyId"],
        DestinationEncryptionAlgorithm=OAEP[1],
    )


def test_re_encrypt_from_rsa_without_source_key_fails_with_invalid_ciphertext(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    source = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    blob = kms.encrypt(KeyId=source["KeyId"], Plaintext=b"x", EncryptionAlgorithm=OAEP[1])[
        "CiphertextBlob"
    ]
    assert_kms_error(
        "InvalidCiphertextException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionAlgorithm=OAEP[1],
        DestinationKeyId=key["KeyId"],
    )


# -- the audit trail ------------------------------------------------------------------


def _forms(secret: bytes) -> list[str]:
    return [base64.b64encode(secret).decode(), secret.hex(), secret.hex().upper()]


def test_no_audit_event_holds_messages_signatures_macs_private_keys_or_shared_secrets(
    server: Any, kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    signer = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    mac_key = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    agreeing = key_of("ECC_NIST_P256", "KEY_AGREEMENT")
    rsa_key = key_of("RSA_2048", "ENCRYPT_DECRYPT")
    message = os.urandom(48)
    calls = {
        "Sign": kms.sign(KeyId=signer["KeyId"], Message=message, SigningAlgorithm="ECDSA_SHA_256"),
        "GenerateMac": kms.generate_mac(
            KeyId=mac_key["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256"
        ),
        "DeriveSharedSecret": kms.derive_shared_secret(
            KeyId=agreeing["KeyId"],
            KeyAgreementAlgorithm="ECDH",
            PublicKey=ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
        "GenerateDataKeyPair": kms.generate_data_key_pair(
            KeyId=key["KeyId"], KeyPairSpec="ECC_NIST_P256"
        ),
        "Encrypt": kms.encrypt(
            KeyId=rsa_key["KeyId"], Plaintext=message, EncryptionAlgorithm=OAEP[1]
        ),
    }
    signature = calls["Sign"]["Signature"]
    calls["Verify"] = kms.verify(
        KeyId=signer["KeyId"],
        Message=message,
        Signature=signature,
        SigningAlgorithm="ECDSA_SHA_256",
    )
    calls["VerifyMac"] = kms.verify_mac(
        KeyId=mac_key["KeyId"],
        Message=message,
        Mac=calls["GenerateMac"]["Mac"],
        MacAlgorithm="HMAC_SHA_256",
    )
    calls["Decrypt"] = kms.decrypt(
        CiphertextBlob=calls["Encrypt"]["CiphertextBlob"],
        KeyId=rsa_key["KeyId"],
        EncryptionAlgorithm=OAEP[1],
    )
    secrets = [
        message,
        signature,
        calls["GenerateMac"]["Mac"],
        calls["DeriveSharedSecret"]["SharedSecret"],
        calls["GenerateDataKeyPair"]["PrivateKeyPlaintext"],
        calls["GenerateDataKeyPair"]["PrivateKeyCiphertextBlob"],
        calls["Encrypt"]["CiphertextBlob"],
    ]
    out = run_strongroom(["audit", "events", *server.storage_args(), "--limit", "1000000"])
    events = {
        e["requestID"]: e for e in (json.loads(line) for line in out.stdout.splitlines() if line)
    }
    for name, response in calls.items():
        event = events[response["ResponseMetadata"]["RequestId"]]
        assert event["eventName"] == name and "errorCode" not in event
    for secret in secrets:
        for form in _forms(secret):
            assert form not in out.stdout


# -- key material at rest -------------------------------------------------------------


def _at_rest(data_dir: Path) -> bytes:
    """The database (and its journals) and any audit segments: all kept at rest but the
    root key file."""
    paths = [data_dir / f"strongroom.db{suffix}" for suffix in ("", "-wal", "-journal")]
    paths += sorted((data_dir / "audit").glob("*")) if (data_dir / "audit").is_dir() else []
    return b"".join(p.read_bytes() for p in paths if p.is_file())


def test_private_keys_and_hmac_secrets_are_stored_wrapped_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        kms = server.client()
        signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
        public_der = kms.get_public_key(KeyId=signer["KeyId"])["PublicKey"]
        mac = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    finally:
        stop_server(server)

    root = FileRootKey(data / "root.key")
    with sqlite3.connect(f"file:{data / 'strongroom.db'}?mode=ro", uri=True) as db:
        rows = dict(
            ((arn, version), bytes(wrapped))
            for arn, version, wrapped in db.execute(
                "SELECT key_arn, version, wrapped FROM key_materials"
            )
        )
    private_der = root.unwrap(rows[(signer["Arn"], 1)], material_aad(signer["Arn"], 1))
    private: Any = serialization.load_der_private_key(private_der, password=None)
    assert (
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public_der
    )
    secret = root.unwrap(rows[(mac_key["Arn"], 1)], material_aad(mac_key["Arn"], 1))
    assert hmac.new(secret, b"m", hashlib.sha256).digest() == mac["Mac"]
    stored = _at_rest(data)
    for material in (private_der, secret):
        assert material not in stored
        for form in _forms(material):
            assert form.encode() not in stored

    server = start_server(data)
    try:
        kms = server.client()
        signature = kms.sign(
            KeyId=signer["KeyId"], Message=b"after", SigningAlgorithm="ECDSA_SHA_256"
        )["Signature"]
        public: Any = serialization.load_der_public_key(public_der)
        public.verify(signature, b"after", ec.ECDSA(hashes.SHA256()))
        again = kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
        assert again["Mac"] == mac["Mac"]
    finally:
        stop_server(server)
