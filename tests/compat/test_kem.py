"""Encapsulate and Decapsulate (ML-KEM) with boto3: round trips, a shared secret made outside
Strongroom with GetPublicKey's key, implicit rejection, AWS's errors, a clean audit trail."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

from conftest import run_strongroom

from ._support import DRY_RUN, ML_KEM_SPECS, KeyMaker, assert_kms_error, usage_error

pytestmark = pytest.mark.compat

# EncapsulateResponse.SharedSecretCiphertextBlob doc: "768 bytes for ML_KEM_512, 1088 bytes
# for ML_KEM_768, and 1568 bytes for ML_KEM_1024"; SharedSecret doc: "a 32-byte ... value".
CIPHERTEXT_BYTES = {"ML_KEM_768": 1088, "ML_KEM_1024": 1568}
PUBLIC_TYPES = {"ML_KEM_768": mlkem.MLKEM768PublicKey, "ML_KEM_1024": mlkem.MLKEM1024PublicKey}


def _kem_key(key_of: KeyMaker, spec: str = "ML_KEM_768") -> dict[str, Any]:
    return key_of(spec, "ENCAPSULATE_DECAPSULATE")


def _decapsulate(kms: Any, key_id: str, ciphertext: bytes) -> bytes:
    out = kms.decapsulate(
        KeyId=key_id, SharedSecretCiphertextBlob=ciphertext, EncapsulationAlgorithm="ML_KEM"
    )
    secret: bytes = out["SharedSecret"]
    return secret


@pytest.mark.parametrize("spec", ML_KEM_SPECS)
def test_decapsulate_recovers_the_secret_encapsulate_made(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = _kem_key(key_of, spec)
    out = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert out["KeyId"] == meta["Arn"]
    assert out["EncapsulationAlgorithm"] == "ML_KEM"
    assert len(out["SharedSecret"]) == 32
    assert len(out["SharedSecretCiphertextBlob"]) == CIPHERTEXT_BYTES[spec]
    back = kms.decapsulate(
        KeyId=meta["Arn"],
        SharedSecretCiphertextBlob=out["SharedSecretCiphertextBlob"],
        EncapsulationAlgorithm="ML_KEM",
    )
    assert back["KeyId"] == meta["Arn"] and back["EncapsulationAlgorithm"] == "ML_KEM"
    assert back["SharedSecret"] == out["SharedSecret"]


def test_each_encapsulate_makes_a_fresh_secret(kms: Any, key_of: KeyMaker) -> None:
    meta = _kem_key(key_of)
    secrets = {
        kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")["SharedSecret"]
        for _ in range(3)
    }
    assert len(secrets) == 3


@pytest.mark.parametrize("spec", ML_KEM_SPECS)
def test_secret_encapsulated_outside_with_the_public_key_decapsulates(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = _kem_key(key_of, spec)
    out = kms.get_public_key(KeyId=meta["KeyId"])
    assert out["KeySpec"] == spec and out["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
    assert out["EncapsulationAlgorithms"] == ["ML_KEM"]
    public = serialization.load_der_public_key(out["PublicKey"])
    assert isinstance(public, PUBLIC_TYPES[spec])
    secret, ciphertext = public.encapsulate()
    assert _decapsulate(kms, meta["KeyId"], ciphertext) == secret


@pytest.mark.parametrize("spec", ML_KEM_SPECS)
def test_describe_key_lists_the_encapsulation_algorithm(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = kms.describe_key(KeyId=_kem_key(key_of, spec)["KeyId"])["KeyMetadata"]
    assert meta["KeySpec"] == spec and meta["KeyUsage"] == "ENCAPSULATE_DECAPSULATE"
    assert meta["EncapsulationAlgorithms"] == ["ML_KEM"]
    for other in ("EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms"):
        assert other not in meta


def test_altered_ciphertext_gives_another_secret_not_an_error(kms: Any, key_of: KeyMaker) -> None:
    # Decapsulate doc: any ciphertext of the right length yields a 32-byte pseudo-random
    # value, even one altered or made for another key (implicit rejection, FIPS 203).
    meta = _kem_key(key_of)
    out = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    tampered = bytearray(out["SharedSecretCiphertextBlob"])
    tampered[0] ^= 1
    other = _decapsulate(kms, meta["KeyId"], bytes(tampered))
    assert len(other) == 32 and other != out["SharedSecret"]
    # The same tampered ciphertext always yields the same rejection secret.
    assert _decapsulate(kms, meta["KeyId"], bytes(tampered)) == other


def test_ciphertext_for_another_key_gives_another_secret(kms: Any, key_of: KeyMaker) -> None:
    mine = _kem_key(key_of)
    theirs = kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    out = kms.encapsulate(KeyId=theirs["KeyId"], EncapsulationAlgorithm="ML_KEM")
    assert (
        _decapsulate(kms, mine["KeyId"], out["SharedSecretCiphertextBlob"]) != (out["SharedSecret"])
    )


@pytest.mark.parametrize("length", [1, 1087, 1089, 1568])
def test_ciphertext_of_the_wrong_length_fails_with_invalid_ciphertext(
    kms: Any, key_of: KeyMaker, length: int
) -> None:
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decapsulate,
        KeyId=_kem_key(key_of)["KeyId"],
        SharedSecretCiphertextBlob=b"\x01" * length,
        EncapsulationAlgorithm="ML_KEM",
    )


def test_encapsulate_and_decapsulate_with_keys_of_other_usages_fail_with_aws_message(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    others = [
        (key, "ENCRYPT_DECRYPT"),
        (key_of("ML_DSA_44", "SIGN_VERIFY"), "SIGN_VERIFY"),
        (key_of("ECC_NIST_P256", "KEY_AGREEMENT"), "KEY_AGREEMENT"),
        (key_of("HMAC_256", "GENERATE_VERIFY_MAC"), "GENERATE_VERIFY_MAC"),
    ]
    for meta, usage in others:
        assert_kms_error(
            "InvalidKeyUsageException",
            kms.encapsulate,
            message=usage_error(meta["Arn"], usage, "Encapsulate"),
            KeyId=meta["KeyId"],
            EncapsulationAlgorithm="ML_KEM",
        )
        assert_kms_error(
            "InvalidKeyUsageException",
            kms.decapsulate,
            message=usage_error(meta["Arn"], usage, "Decapsulate"),
            KeyId=meta["KeyId"],
            SharedSecretCiphertextBlob=b"\0" * 1088,
            EncapsulationAlgorithm="ML_KEM",
        )


@pytest.mark.parametrize("operation", ["Encrypt", "Sign", "GenerateMac", "DeriveSharedSecret"])
def test_ml_kem_key_fails_other_operations_with_invalid_key_usage(
    kms: Any, key_of: KeyMaker, operation: str
) -> None:
    meta = _kem_key(key_of)
    calls: dict[str, tuple[Any, dict[str, Any]]] = {
        "Encrypt": (kms.encrypt, {"Plaintext": b"x", "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        "Sign": (kms.sign, {"Message": b"x", "SigningAlgorithm": "ML_DSA_SHAKE_256"}),
        "GenerateMac": (kms.generate_mac, {"Message": b"x", "MacAlgorithm": "HMAC_SHA_256"}),
        "DeriveSharedSecret": (
            kms.derive_shared_secret,
            {"KeyAgreementAlgorithm": "ECDH", "PublicKey": b"\x30\x00"},
        ),
    }
    call, arguments = calls[operation]
    assert_kms_error(
        "InvalidKeyUsageException",
        call,
        message=usage_error(meta["Arn"], "ENCAPSULATE_DECAPSULATE", operation),
        KeyId=meta["KeyId"],
        **arguments,
    )


def test_create_key_of_ml_kem_512_fails_with_unsupported_operation_naming_it(kms: Any) -> None:
    response = assert_kms_error(
        "UnsupportedOperationException",
        kms.create_key,
        KeySpec="ML_KEM_512",
        KeyUsage="ENCAPSULATE_DECAPSULATE",
    )
    assert "KeySpec ML_KEM_512 is not supported" in response["Error"]["Message"]


@pytest.mark.parametrize("usage", ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT"])
def test_create_key_of_ml_kem_with_another_usage_fails_with_validation(
    kms: Any, usage: str
) -> None:
    assert_kms_error(
        "ValidationException",
        kms.create_key,
        message=f"KeyUsage {usage} is not compatible with KeySpec ML_KEM_768",
        KeySpec="ML_KEM_768",
        KeyUsage=usage,
    )


def test_encapsulate_and_decapsulate_with_disabled_key_fail_with_disabled(kms: Any) -> None:
    meta = kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    ciphertext = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")[
        "SharedSecretCiphertextBlob"
    ]
    kms.disable_key(KeyId=meta["KeyId"])
    assert_kms_error(
        "DisabledException",
        kms.encapsulate,
        message=f"{meta['Arn']} is disabled.",
        KeyId=meta["KeyId"],
        EncapsulationAlgorithm="ML_KEM",
    )
    assert_kms_error(
        "DisabledException",
        kms.decapsulate,
        message=f"{meta['Arn']} is disabled.",
        KeyId=meta["KeyId"],
        SharedSecretCiphertextBlob=ciphertext,
        EncapsulationAlgorithm="ML_KEM",
    )
    kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.encapsulate,
        message=f"{meta['Arn']} is pending deletion.",
        KeyId=meta["KeyId"],
        EncapsulationAlgorithm="ML_KEM",
    )


def test_encapsulate_and_decapsulate_honour_dry_run(kms: Any, key_of: KeyMaker) -> None:
    meta = _kem_key(key_of)
    response = assert_kms_error(
        "DryRunOperationException",
        kms.encapsulate,
        message=DRY_RUN,
        KeyId=meta["KeyId"],
        EncapsulationAlgorithm="ML_KEM",
        DryRun=True,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert_kms_error(
        "DryRunOperationException",
        kms.decapsulate,
        message=DRY_RUN,
        KeyId=meta["KeyId"],
        SharedSecretCiphertextBlob=b"\0" * 1088,
        EncapsulationAlgorithm="ML_KEM",
        DryRun=True,
    )


def test_no_audit_event_holds_a_shared_secret_or_its_encapsulation(
    server: Any, kms: Any, key_of: KeyMaker
) -> None:
    meta = _kem_key(key_of)
    encapsulated = kms.encapsulate(KeyId=meta["KeyId"], EncapsulationAlgorithm="ML_KEM")
    decapsulated = kms.decapsulate(
        KeyId=meta["KeyId"],
        SharedSecretCiphertextBlob=encapsulated["SharedSecretCiphertextBlob"],
        EncapsulationAlgorithm="ML_KEM",
    )
    out = run_strongroom(["audit", "events", *server.storage_args(), "--limit", "1000000"])
    events = {
        e["requestID"]: e for e in (json.loads(line) for line in out.stdout.splitlines() if line)
    }
    for name, response in (("Encapsulate", encapsulated), ("Decapsulate", decapsulated)):
        event = events[response["ResponseMetadata"]["RequestId"]]
        assert event["eventName"] == name and "errorCode" not in event
        assert event["requestParameters"]["encapsulationAlgorithm"] == "ML_KEM"
        assert event["resources"][0]["ARN"] == meta["Arn"]
    for secret in (encapsulated["SharedSecret"], encapsulated["SharedSecretCiphertextBlob"]):
        for form in (base64.b64encode(secret).decode(), secret.hex(), secret.hex().upper()):
            assert form not in out.stdout
