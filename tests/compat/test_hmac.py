"""HMAC keys with boto3: GenerateMac and VerifyMac for every HMAC key spec, AWS's errors."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ._support import DRY_RUN, HMAC_SPECS, KeyMaker, assert_kms_error, usage_error

pytestmark = pytest.mark.compat

MAC_ALGORITHMS = {spec: f"HMAC_SHA_{spec[5:]}" for spec in HMAC_SPECS}


@pytest.mark.parametrize("spec", HMAC_SPECS)
def test_generate_mac_gives_the_full_hmac_and_verify_mac_accepts_it(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = key_of(spec, "GENERATE_VERIFY_MAC")
    algorithm = MAC_ALGORITHMS[spec]
    message = os.urandom(200)
    out = kms.generate_mac(KeyId=meta["KeyId"], Message=message, MacAlgorithm=algorithm)
    assert out["KeyId"] == meta["Arn"] and out["MacAlgorithm"] == algorithm
    assert len(out["Mac"]) == int(spec[5:]) // 8  # untruncated (GenerateMacResponse.Mac doc)
    again = kms.generate_mac(KeyId=meta["Arn"], Message=message, MacAlgorithm=algorithm)["Mac"]
    assert again == out["Mac"]
    other = kms.generate_mac(KeyId=meta["KeyId"], Message=message + b"!", MacAlgorithm=algorithm)
    assert other["Mac"] != out["Mac"]
    verified = kms.verify_mac(
        KeyId=meta["KeyId"], Message=message, Mac=out["Mac"], MacAlgorithm=algorithm
    )
    assert verified == {
        "KeyId": meta["Arn"],
        "MacValid": True,
        "MacAlgorithm": algorithm,
        "ResponseMetadata": verified["ResponseMetadata"],
    }


def test_two_hmac_keys_of_one_spec_give_different_macs(kms: Any, key_of: KeyMaker) -> None:
    first = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    second = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    macs = {
        kms.generate_mac(KeyId=k["KeyId"], Message=b"same", MacAlgorithm="HMAC_SHA_256")["Mac"]
        for k in (first, second)
    }
    assert len(macs) == 2


@pytest.mark.parametrize("spec", HMAC_SPECS)
def test_verify_mac_of_a_wrong_mac_fails_with_empty_invalid_mac(
    kms: Any, key_of: KeyMaker, spec: str
) -> None:
    meta = key_of(spec, "GENERATE_VERIFY_MAC")
    algorithm = MAC_ALGORITHMS[spec]
    mac = kms.generate_mac(KeyId=meta["KeyId"], Message=b"message", MacAlgorithm=algorithm)["Mac"]
    flipped = mac[:-1] + bytes([mac[-1] ^ 1])
    for message, candidate in ((b"message", flipped), (b"other", mac), (b"message", mac[:-1])):
        assert_kms_error(
            "KMSInvalidMacException",
            kms.verify_mac,
            message="",  # recorded against AWS (LocalStack snapshot test_invalid_verify_mac)
            KeyId=meta["KeyId"],
            Message=message,
            Mac=candidate,
            MacAlgorithm=algorithm,
        )


def test_mac_algorithm_of_another_spec_fails_with_aws_message(kms: Any, key_of: KeyMaker) -> None:
    small = key_of("HMAC_224", "GENERATE_VERIFY_MAC")
    medium = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    # Both recorded against AWS (LocalStack snapshots test_invalid_generate_mac/_verify_mac).
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.generate_mac,
        message="Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.",
        KeyId=small["KeyId"],
        Message=b"m",
        MacAlgorithm="HMAC_SHA_256",
    )
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.verify_mac,
        message="Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.",
        KeyId=medium["KeyId"],
        Message=b"m",
        Mac=b"x" * 32,
        MacAlgorithm="HMAC_SHA_512",
    )


def test_generate_mac_with_keys_of_other_usages_fails_with_aws_message(
    kms: Any, key_of: KeyMaker, key: dict[str, Any]
) -> None:
    signer = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    for meta, usage in ((key, "ENCRYPT_DECRYPT"), (signer, "SIGN_VERIFY")):
        for call, operation, extra in (
            (kms.generate_mac, "GenerateMac", {}),
            (kms.verify_mac, "VerifyMac", {"Mac": b"x" * 32}),
        ):
            assert_kms_error(
                "InvalidKeyUsageException",
                call,
                message=usage_error(meta["Arn"], usage, operation),
                KeyId=meta["KeyId"],
                Message=b"m",
                MacAlgorithm="HMAC_SHA_256",
                **extra,
            )


def test_hmac_key_cannot_encrypt(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("HMAC_512", "GENERATE_VERIFY_MAC")
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        message=usage_error(meta["Arn"], "GENERATE_VERIFY_MAC", "Encrypt"),
        KeyId=meta["KeyId"],
        Plaintext=b"x",
    )


def test_message_of_4096_bytes_is_maced_and_4097_is_refused(
    kms: Any, raw_kms: Any, key_of: KeyMaker
) -> None:
    meta = key_of("HMAC_384", "GENERATE_VERIFY_MAC")
    message = os.urandom(4096)
    mac = kms.generate_mac(KeyId=meta["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_384")
    assert len(mac["Mac"]) == 48
    assert_kms_error(
        "ValidationException",
        raw_kms.generate_mac,
        message="1 validation error detected: Value at 'message' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
        KeyId=meta["KeyId"],
        Message=message + b"x",
        MacAlgorithm="HMAC_SHA_384",
    )


def test_generate_mac_with_disabled_key_fails_with_disabled(kms: Any) -> None:
    meta = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    arguments = {"KeyId": meta["KeyId"], "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}
    mac = kms.generate_mac(**arguments)["Mac"]
    kms.disable_key(KeyId=meta["KeyId"])
    message = f"{meta['Arn']} is disabled."
    assert_kms_error("DisabledException", kms.generate_mac, message=message, **arguments)
    assert_kms_error("DisabledException", kms.verify_mac, message=message, Mac=mac, **arguments)
    kms.enable_key(KeyId=meta["KeyId"])
    assert kms.verify_mac(Mac=mac, **arguments)["MacValid"] is True


def test_generate_mac_and_verify_mac_honour_dry_run(kms: Any, key_of: KeyMaker) -> None:
    meta = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    arguments = {"KeyId": meta["KeyId"], "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}
    mac = kms.generate_mac(**arguments)["Mac"]
    for call, extra in ((kms.generate_mac, {}), (kms.verify_mac, {"Mac": mac})):
        response = assert_kms_error(
            "DryRunOperationException", call, message=DRY_RUN, DryRun=True, **arguments, **extra
        )
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_mac_algorithm_lists_the_values_in_aws_order(
    raw_kms: Any, key_of: KeyMaker
) -> None:
    # Recorded against AWS: LocalStack snapshots test_invalid_generate_mac[HMAC_256-INVALID]
    # and test_invalid_verify_mac[HMAC_256-INVALID-some important message]
    # (tests/aws/services/kms/test_kms.snapshot.json). AWS's order, not the model's
    # (HMAC_SHA_224, HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512).
    meta = key_of("HMAC_256", "GENERATE_VERIFY_MAC")
    message = (
        "1 validation error detected: Value 'INVALID' at 'macAlgorithm' failed to satisfy "
        "constraint: Member must satisfy enum value set: "
        "[HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]"
    )
    arguments = {"KeyId": meta["KeyId"], "Message": b"m", "MacAlgorithm": "INVALID"}
    assert_kms_error("ValidationException", raw_kms.generate_mac, message=message, **arguments)
    assert_kms_error(
        "ValidationException", raw_kms.verify_mac, message=message, Mac=b"0" * 32, **arguments
    )


def test_other_enums_are_listed_in_the_model_order(raw_kms: Any, key_of: KeyMaker) -> None:
    # No AWS recording shows the current set of signing algorithms: the model's order.
    meta = key_of("ECC_NIST_P256", "SIGN_VERIFY")
    allowed = raw_kms.meta.service_model.shape_for("SigningAlgorithmSpec").enum
    assert_kms_error(
        "ValidationException",
        raw_kms.sign,
        message="1 validation error detected: Value 'INVALID' at 'signingAlgorithm' failed to "
        f"satisfy constraint: Member must satisfy enum value set: [{', '.join(allowed)}]",
        KeyId=meta["KeyId"],
        Message=b"m",
        SigningAlgorithm="INVALID",
    )
