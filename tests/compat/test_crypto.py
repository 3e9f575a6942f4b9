"""Symmetric cryptography with boto3: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
GenerateDataKeyWithoutPlaintext, GenerateRandom; their limits and crypto properties."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ._support import FORMS, REGION, assert_kms_error

pytestmark = pytest.mark.compat

INCORRECT_KEY = "The key ID in the request does not identify a CMK that can perform this operation."
UNKNOWN = "11111111-2222-3333-4444-555555555555"


# -- Encrypt / Decrypt ----------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_encrypt_then_decrypt_round_trips_with_every_key_identifier(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    ref = aliased_key["forms"][form]
    arn = aliased_key["meta"]["Arn"]
    out = kms.encrypt(KeyId=ref, Plaintext=b"attack at dawn", EncryptionContext={"purpose": "test"})
    assert out["KeyId"] == arn
    assert out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert b"attack at dawn" not in out["CiphertextBlob"]
    plain = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"purpose": "test"})
    assert plain["Plaintext"] == b"attack at dawn"
    assert plain["KeyId"] == arn
    assert plain["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    named = kms.decrypt(
        CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"purpose": "test"}, KeyId=ref
    )
    assert named["Plaintext"] == b"attack at dawn"


def test_two_encrypts_of_the_same_input_differ(kms: Any, key: dict[str, Any]) -> None:
    blobs = {
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same", EncryptionContext={"a": "b"})[
            "CiphertextBlob"
        ]
        for _ in range(3)
    }
    assert len(blobs) == 3
    for blob in blobs:
        assert (
            kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"same"
        )


def test_encrypt_accepts_binary_plaintext(kms: Any, key: dict[str, Any]) -> None:
    data = bytes(range(256))
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=data)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == data


def test_encrypt_accepts_4096_bytes_and_the_ciphertext_fits_the_limit(
    kms: Any, key: dict[str, Any]
) -> None:
    data = os.urandom(4096)
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=data)["CiphertextBlob"]
    assert len(blob) <= 6144
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == data


def test_encrypt_of_more_than_4096_bytes_fails_with_aws_message(
    raw_kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error(
        "ValidationException",
        raw_kms.encrypt,
        message="1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
        KeyId=key["KeyId"],
        Plaintext=b"x" * 4097,
    )


def test_encrypt_of_empty_plaintext_fails(raw_kms: Any, key: dict[str, Any]) -> None:
    response = assert_kms_error(
        "ValidationException", raw_kms.encrypt, KeyId=key["KeyId"], Plaintext=b""
    )
    assert "Member must have length greater than or equal to 1" in response["Error"]["Message"]


def test_decrypt_of_more_than_6144_bytes_fails(raw_kms: Any) -> None:
    response = assert_kms_error("ValidationException", raw_kms.decrypt, CiphertextBlob=b"x" * 6145)
    assert "'ciphertextBlob'" in response["Error"]["Message"]
    assert "Member must have length less than or equal to 6144" in response["Error"]["Message"]


def test_encrypt_with_unknown_key_fails_with_not_found(kms: Any) -> None:
    assert_kms_error("NotFoundException", kms.encrypt, KeyId=UNKNOWN, Plaintext=b"x")
    assert_kms_error(
        "NotFoundException", kms.encrypt, KeyId="alias/never-created-here", Plaintext=b"x"
    )


def test_encrypt_with_arn_of_another_region_fails_with_not_found(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    for form in ("key ARN", "alias ARN"):
        other = aliased_key["forms"][form].replace(f":{REGION}:", ":eu-west-1:")
        assert_kms_error(
            "NotFoundException",
            kms.encrypt,
            message="Invalid arn eu-west-1",
            KeyId=other,
            Plaintext=b"x",
        )


def test_encrypt_with_asymmetric_algorithm_fails(kms: Any, key: dict[str, Any]) -> None:
    assert_kms_error(
        "InvalidKeyUsageException",
        kms.encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionAlgorithm="RSAES_OAEP_SHA_256",
    )


def test_encrypt_with_dry_run_fails_with_dry_run_exception(kms: Any, key: dict[str, Any]) -> None:
    # HTTP 400 as real AWS answers (see test_data_key_pair_honours_dry_run).
    response = assert_kms_error(
        "DryRunOperationException",
        kms.encrypt,
        message="The request would have succeeded, but the DryRun option is set.",
        KeyId=key["KeyId"],
        Plaintext=b"x",
        DryRun=True,
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_decrypt_with_dry_run_fails_with_dry_run_exception(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error("DryRunOperationException", kms.decrypt, CiphertextBlob=blob, DryRun=True)


# -- crypto properties ----------------------------------------------------------------


def test_decrypt_with_a_flipped_bit_fails_with_invalid_ciphertext(
    kms: Any, key: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"integrity", EncryptionContext={"k": "v"})[
        "CiphertextBlob"
    ]
    for i in range(len(blob)):  # every byte, a different bit each time
        changed = bytearray(blob)
        changed[i] ^= 1 << (i % 8)
        assert_kms_error(
            "InvalidCiphertextException",
            kms.decrypt,
            CiphertextBlob=bytes(changed),
            EncryptionContext={"k": "v"},
        )


def test_decrypt_of_a_truncated_or_extended_blob_fails(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"integrity")["CiphertextBlob"]
    for bad in (blob[:-1], blob[:20], blob + b"\x00", blob[:1]):
        assert_kms_error("InvalidCiphertextException", kms.decrypt, CiphertextBlob=bad)


def test_decrypt_of_garbage_fails_with_invalid_ciphertext_and_empty_message(kms: Any) -> None:
    assert_kms_error(
        "InvalidCiphertextException", kms.decrypt, message="", CiphertextBlob=os.urandom(120)
    )


@pytest.mark.parametrize(
    "wrong",
    [
        None,
        {},
        {"purpose": "Test"},
        {"Purpose": "test"},
        {"purpose": "test", "extra": "x"},
        {"other": "test"},
    ],
    ids=["missing", "empty", "value-case", "key-case", "extra-pair", "other-key"],
)
def test_decrypt_with_wrong_context_fails(
    kms: Any, key: dict[str, Any], wrong: dict[str, str] | None
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={"purpose": "test"})[
        "CiphertextBlob"
    ]
    kwargs = {} if wrong is None else {"EncryptionContext": wrong}
    assert_kms_error(
        "InvalidCiphertextException", kms.decrypt, message="", CiphertextBlob=blob, **kwargs
    )


def test_decrypt_with_context_when_none_was_given_fails(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx")["CiphertextBlob"]
    assert_kms_error(
        "InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, EncryptionContext={"a": "b"}
    )


def test_context_pairs_are_not_confused_by_concatenation(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={"ab": "c"})[
        "CiphertextBlob"
    ]
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decrypt,
        CiphertextBlob=blob,
        EncryptionContext={"a": "bc"},
    )
    blob = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={"a": "b", "c": "d"}
    )["CiphertextBlob"]
    # Concatenated, {"a": "b", "c": "d"} and {"a": "bcd"} are both "abcd".
    assert_kms_error(
        "InvalidCiphertextException",
        kms.decrypt,
        CiphertextBlob=blob,
        EncryptionContext={"a": "bcd"},
    )


def test_context_pair_order_does_not_matter(kms: Any, key: dict[str, Any]) -> None:
    context = {"z": "1", "a": "2", "m": "ünïcødé ✓"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext=context)[
        "CiphertextBlob"
    ]
    reordered = dict(sorted(context.items()))
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=reordered)["Plaintext"] == b"ctx"


def test_empty_context_is_the_same_as_no_context(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"ctx"


@pytest.mark.parametrize("form", FORMS)
def test_decrypt_naming_another_key_fails_with_incorrect_key(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    encrypting = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=encrypting["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error(
        "IncorrectKeyException",
        kms.decrypt,
        message=INCORRECT_KEY,
        CiphertextBlob=blob,
        KeyId=aliased_key["forms"][form],
    )


def test_decrypt_naming_unknown_key_fails_with_not_found(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error("NotFoundException", kms.decrypt, CiphertextBlob=blob, KeyId=UNKNOWN)


def test_ciphertext_of_us_east_1_is_not_usable_in_eu_west_1(
    kms: Any, eu_kms: Any, key: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"regional")["CiphertextBlob"]
    assert_kms_error("InvalidCiphertextException", eu_kms.decrypt, CiphertextBlob=blob)
    assert_kms_error("NotFoundException", eu_kms.decrypt, CiphertextBlob=blob, KeyId=key["Arn"])
    eu_key = eu_kms.create_key()["KeyMetadata"]
    assert_kms_error(
        "InvalidCiphertextException",
        eu_kms.re_encrypt,
        CiphertextBlob=blob,
        DestinationKeyId=eu_key["KeyId"],
    )
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"regional"


def test_eu_west_1_key_encrypts_and_decrypts_in_its_region(eu_kms: Any, kms: Any) -> None:
    meta = eu_kms.create_key()["KeyMetadata"]
    out = eu_kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"eu")
    assert out["KeyId"].startswith("arn:aws:kms:eu-west-1:")
    assert eu_kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == b"eu"
    assert_kms_error(
        "InvalidCiphertextException", kms.decrypt, CiphertextBlob=out["CiphertextBlob"]
    )


def test_other_account_cannot_decrypt_or_encrypt_with_a_key(
    kms: Any, key: dict[str, Any], other_account: dict[str, Any]
) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    bob = other_account["client"]
    assert_kms_error("AccessDeniedException", bob.decrypt, CiphertextBlob=blob)
    assert_kms_error("AccessDeniedException", bob.encrypt, KeyId=key["Arn"], Plaintext=b"x")
    assert_kms_error(
        "AccessDeniedException", bob.generate_data_key, KeyId=key["Arn"], KeySpec="AES_256"
    )


# -- ReEncrypt ------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_re_encrypt_moves_ciphertext_to_another_key(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"move me", EncryptionContext={"v": "1"})[
        "CiphertextBlob"
    ]
    dest = aliased_key["forms"][form]
    out = kms.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"v": "1"},
        DestinationKeyId=dest,
        DestinationEncryptionContext={"v": "2"},
    )
    assert out["SourceKeyId"] == key["Arn"]
    assert out["KeyId"] == aliased_key["meta"]["Arn"]
    assert (
        out["SourceEncryptionAlgorithm"]
        == out["DestinationEncryptionAlgorithm"]
        == "SYMMETRIC_DEFAULT"
    )
    new = out["CiphertextBlob"]
    assert new != blob
    plain = kms.decrypt(CiphertextBlob=new, EncryptionContext={"v": "2"})
    assert plain["Plaintext"] == b"move me" and plain["KeyId"] == aliased_key["meta"]["Arn"]
    assert_kms_error(
        "InvalidCiphertextException", kms.decrypt, CiphertextBlob=new, EncryptionContext={"v": "1"}
    )
    # SourceKeyId in any form, too.
    again = kms.re_encrypt(
        CiphertextBlob=new,
        SourceEncryptionContext={"v": "2"},
        SourceKeyId=dest,
        DestinationKeyId=key["KeyId"],
    )
    assert kms.decrypt(CiphertextBlob=again["CiphertextBlob"])["Plaintext"] == b"move me"


def test_re_encrypt_with_wrong_source_context_fails(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"v": "1"})[
        "CiphertextBlob"
    ]
    assert_kms_error(
        "InvalidCiphertextException",
        kms.re_encrypt,
        CiphertextBlob=blob,
        SourceEncryptionContext={"v": "2"},
        DestinationKeyId=key["KeyId"],
    )


def test_re_encrypt_naming_the_wrong_source_key_fails_with_incorrect_key(
    kms: Any, aliased_key: dict[str, Any]
) -> None:
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error(
        "IncorrectKeyException",
        kms.re_encrypt,
        message=INCORRECT_KEY,
        CiphertextBlob=blob,
        SourceKeyId=aliased_key["alias"],
        DestinationKeyId=key["KeyId"],
    )


def test_re_encrypt_to_unknown_key_fails(kms: Any, key: dict[str, Any]) -> None:
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert_kms_error(
        "NotFoundException", kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=UNKNOWN
    )


def test_re_encrypt_of_a_flipped_bit_fails(kms: Any, key: dict[str, Any]) -> None:
    blob = bytearray(kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"])
    blob[-1] ^= 0x80
    assert_kms_error(
        "InvalidCiphertextException",
        kms.re_encrypt,
        CiphertextBlob=bytes(blob),
        DestinationKeyId=key["KeyId"],
    )


# -- GenerateDataKey / GenerateDataKeyWithoutPlaintext --------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_generate_data_key_returns_a_key_and_its_ciphertext(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    out = kms.generate_data_key(
        KeyId=aliased_key["forms"][form], KeySpec="AES_256", EncryptionContext={"file": "a.txt"}
    )
    assert out["KeyId"] == aliased_key["meta"]["Arn"]
    assert len(out["Plaintext"]) == 32
    assert out["Plaintext"] not in out["CiphertextBlob"]
    plain = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"file": "a.txt"})
    assert plain["Plaintext"] == out["Plaintext"]
    assert_kms_error(
        "InvalidCiphertextException", kms.decrypt, CiphertextBlob=out["CiphertextBlob"]
    )


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        ({"KeySpec": "AES_128"}, 16),
        ({"KeySpec": "AES_256"}, 32),
        ({"NumberOfBytes": 1}, 1),
        ({"NumberOfBytes": 64}, 64),
        ({"NumberOfBytes": 1024}, 1024),
    ],
)
def test_generate_data_key_sizes(
    kms: Any, key: dict[str, Any], kwargs: dict[str, Any], size: int
) -> None:
    out = kms.generate_data_key(KeyId=key["KeyId"], **kwargs)
    assert len(out["Plaintext"]) == size
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"] == out["Plaintext"]


def test_generate_data_key_gives_a_new_key_each_time(kms: Any, key: dict[str, Any]) -> None:
    keys = {
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")["Plaintext"] for _ in range(3)
    }
    assert len(keys) == 3


def test_generate_data_key_with_both_key_spec_and_number_of_bytes_fails(
    kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error(
        "ValidationException",
        kms.generate_data_key,
        KeyId=key["KeyId"],
        KeySpec="AES_256",
        NumberOfBytes=32,
    )


def test_generate_data_key_with_neither_key_spec_nor_number_of_bytes_fails(
    kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error("ValidationException", kms.generate_data_key, KeyId=key["KeyId"])


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (1025, "Member must have value less than or equal to 1024"),
    ],
)
def test_generate_data_key_with_number_of_bytes_out_of_range_fails(
    raw_kms: Any, key: dict[str, Any], number: int, rule: str
) -> None:
    assert_kms_error(
        "ValidationException",
        raw_kms.generate_data_key,
        message=f"1 validation error detected: Value '{number}' at 'numberOfBytes' "
        f"failed to satisfy constraint: {rule}",
        KeyId=key["KeyId"],
        NumberOfBytes=number,
    )


def test_generate_data_key_with_unknown_key_spec_fails(raw_kms: Any, key: dict[str, Any]) -> None:
    response = assert_kms_error(
        "ValidationException", raw_kms.generate_data_key, KeyId=key["KeyId"], KeySpec="AES_512"
    )
    assert "'keySpec'" in response["Error"]["Message"]


def test_generate_data_key_with_unknown_key_fails(kms: Any) -> None:
    assert_kms_error("NotFoundException", kms.generate_data_key, KeyId=UNKNOWN, KeySpec="AES_256")


@pytest.mark.parametrize("form", FORMS)
def test_generate_data_key_without_plaintext_returns_only_ciphertext(
    kms: Any, aliased_key: dict[str, Any], form: str
) -> None:
    out = kms.generate_data_key_without_plaintext(
        KeyId=aliased_key["forms"][form], KeySpec="AES_128", EncryptionContext={"k": "v"}
    )
    assert "Plaintext" not in out
    assert out["KeyId"] == aliased_key["meta"]["Arn"]
    plain = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert len(plain["Plaintext"]) == 16


def test_generate_data_key_without_plaintext_with_number_of_bytes(
    kms: Any, key: dict[str, Any]
) -> None:
    out = kms.generate_data_key_without_plaintext(KeyId=key["KeyId"], NumberOfBytes=48)
    assert len(kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["Plaintext"]) == 48


def test_generate_data_key_without_plaintext_with_both_sizes_fails(
    kms: Any, key: dict[str, Any]
) -> None:
    assert_kms_error(
        "ValidationException",
        kms.generate_data_key_without_plaintext,
        KeyId=key["KeyId"],
        KeySpec="AES_256",
        NumberOfBytes=32,
    )
    assert_kms_error(
        "ValidationException", kms.generate_data_key_without_plaintext, KeyId=key["KeyId"]
    )


# -- GenerateRandom -------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 32, 1024])
def test_generate_random_returns_the_number_of_bytes_asked_for(kms: Any, size: int) -> None:
    assert len(kms.generate_random(NumberOfBytes=size)["Plaintext"]) == size


def test_generate_random_differs_each_time(kms: Any) -> None:
    assert len({kms.generate_random(NumberOfBytes=32)["Plaintext"] for _ in range(3)}) == 3


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (1025, "Member must have value less than or equal to 1024"),
    ],
)
def test_generate_random_out_of_range_fails_with_aws_message(
    raw_kms: Any, number: int, rule: str
) -> None:
    assert_kms_error(
        "ValidationException",
        raw_kms.generate_random,
        message=f"1 validation error detected: Value '{number}' at 'numberOfBytes' "
        f"failed to satisfy constraint: {rule}",
        NumberOfBytes=number,
    )


def test_generate_random_without_number_of_bytes_fails(kms: Any) -> None:
    assert_kms_error(
        "ValidationException", kms.generate_random, message="NumberOfBytes is required."
    )
