"""The AWS JSON 1.1 codec against real KMS operations of botocore's model."""

from __future__ import annotations

import base64
import re
import warnings
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from botocore.loaders import create_loader

from strongroom.domain.enums import KeyState
from strongroom.domain.errors import (
    NotFoundException,
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from strongroom.domain.secrets import KeyBytes
from strongroom.protocol import OperationCodec, ServiceModel, encode_error, load_model
from strongroom.protocol._scalars import compile_pattern, enum_order

pytestmark = pytest.mark.unit

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PREFIX = "1 validation error detected: "
SHAPES: dict[str, Any] = create_loader().load_service_model("kms", "service-2")["shapes"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def enum_text(shape: str) -> str:
    return f"Member must satisfy enum value set: [{', '.join(SHAPES[shape]['enum'])}]"


def codec(operation: str) -> OperationCodec:
    return load_model().operation(operation)


def decode(operation: str, request: Any) -> dict[str, Any]:
    return codec(operation).decode(orjson.dumps(request))


def validation_message(operation: str, request: Any) -> str:
    with pytest.raises(ValidationException) as caught:
        decode(operation, request)
    return caught.value.message


def serialization_message(operation: str, body: bytes) -> str:
    with pytest.raises(SerializationException) as caught:
        codec(operation).decode(body)
    return caught.value.message


# --- the model -------------------------------------------------------------------------


def test_load_model_is_a_cached_singleton_with_every_kms_operation() -> None:
    model = load_model()
    assert model is load_model()
    assert isinstance(model, ServiceModel)
    assert {
        "Encrypt",
        "Decrypt",
        "CreateKey",
        "GenerateRandom",
        "ListKeys",
    } <= model.operation_names
    assert model.operation("Encrypt") is model.operation("Encrypt")
    assert model.operation("Encrypt").name == "Encrypt"


@pytest.mark.parametrize("name", ["Nope", "encrypt", "TrentService.Encrypt", ""])
def test_unknown_operation_is_refused(name: str) -> None:
    with pytest.raises(UnknownOperationException) as caught:
        load_model().operation(name)
    assert caught.value.code == "UnknownOperationException"
    assert caught.value.message


def test_every_operation_compiles_without_regex_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ServiceModel(create_loader().load_service_model("kms", "service-2"))
        for name in model.operation_names:
            model.operation(name)


@pytest.mark.parametrize(
    "pattern", sorted({s["pattern"] for s in SHAPES.values() if "pattern" in s})
)
def test_every_model_pattern_compiles_as_a_python_regex(pattern: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(compile_pattern(pattern), re.Pattern)


def test_patterns_keep_java_ascii_semantics() -> None:
    # PolicyNameType is '[\w]+': Java's \w is ASCII-only.
    assert compile_pattern(r"[\w]+").fullmatch("default")
    assert compile_pattern(r"[\w]+").fullmatch("défaut") is None


# --- decoding --------------------------------------------------------------------------


def test_encrypt_request_decodes_blobs_and_keeps_the_context() -> None:
    request = {
        "KeyId": KEY_ARN,
        "Plaintext": b64(b"attack at dawn"),
        "EncryptionContext": {"purpose": "test", "tenant": "acme"},
        "GrantTokens": ["token"],
    }
    assert decode("Encrypt", request) == {
        "KeyId": KEY_ARN,
        "Plaintext": b"attack at dawn",
        "EncryptionContext": {"purpose": "test", "tenant": "acme"},
        "GrantTokens": ["token"],
    }


def test_unknown_and_null_members_are_dropped() -> None:
    request = {"KeyId": "k", "Plaintext": b64(b"x"), "Bogus": 1, "EncryptionAlgorithm": None}
    assert decode("Encrypt", request) == {"KeyId": "k", "Plaintext": b"x"}


@pytest.mark.parametrize("body", [b"", b"{}"])
def test_empty_body_is_an_empty_request(body: bytes) -> None:
    assert codec("ListKeys").decode(body) == {}


def test_empty_body_still_needs_the_required_members() -> None:
    with pytest.raises(ValidationException) as caught:
        codec("Encrypt").decode(b"")
    assert caught.value.message == (
        "2 validation errors detected: "
        "Value null at 'keyId' failed to satisfy constraint: Member must not be null; "
        "Value null at 'plaintext' failed to satisfy constraint: Member must not be null"
    )


def test_tags_decode_as_a_list_of_structures() -> None:
    tags = [{"TagKey": "team", "TagValue": "crypto"}, {"TagKey": "empty", "TagValue": ""}]
    assert decode("CreateKey", {"Tags": tags, "KeySpec": "SYMMETRIC_DEFAULT"}) == {
        "Tags": tags,
        "KeySpec": "SYMMETRIC_DEFAULT",
    }


def test_integer_arriving_as_whole_float_is_an_integer() -> None:
    decoded = decode("GenerateRandom", {"NumberOfBytes": 32.0})
    assert decoded == {"NumberOfBytes": 32}
    assert type(decoded["NumberOfBytes"]) is int


def test_booleans_decode() -> None:
    assert decode("CreateKey", {"BypassPolicyLockoutSafetyCheck": True, "MultiRegion": False}) == {
        "BypassPolicyLockoutSafetyCheck": True,
        "MultiRegion": False,
    }


def test_timestamp_decodes_to_an_aware_datetime() -> None:
    request = {
        "KeyId": "k",
        "ImportToken": b64(b"token"),
        "EncryptedKeyMaterial": b64(b"material"),
        "ValidTo": 1700000000.5,
    }
    decoded = decode("ImportKeyMaterial", request)
    assert decoded["ValidTo"] == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert decoded["ImportToken"] == b"token"


# --- serialization errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", "Start of list found where not expected"),
        (b"null", "The request body must be a JSON object"),
        (b'"x"', "The request body must be a JSON object"),
        (b"1", "The request body must be a JSON object"),
        (b"{", "The request body is not valid JSON"),
        (b'{"NumberOfBytes": 1,}', "The request body is not valid JSON"),
        (b'{"NumberOfBytes": "\xff"}', "The request body is not valid JSON"),
    ],
)
def test_body_that_is_not_a_json_object_is_a_serialization_error(body: bytes, message: str) -> None:
    assert serialization_message("GenerateRandom", body) == message


@pytest.mark.parametrize(
    ("operation", "request_", "message"),
    [
        (
            "GenerateRandom",
            {"NumberOfBytes": "1"},
            "STRING_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": True},
            "TRUE_VALUE can not be converted to an Integer",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": False},
            "FALSE_VALUE can not be converted to an Integer",
        ),
        ("GenerateRandom", {"NumberOfBytes": [1]}, "Start of list found where not expected"),
        (
            "GenerateRandom",
            {"NumberOfBytes": {"a": 1}},
            "Start of structure or map found where not expected.",
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": 1.5},
            (
                "Value '1.5' at 'numberOfBytes' can not be converted to an Integer: "
                "it has a fractional part"
            ),
        ),
        ("Encrypt", {"KeyId": 1}, "NUMBER_VALUE can not be converted to a String"),
        ("Encrypt", {"KeyId": True}, "TRUE_VALUE can not be converted to a String"),
        ("Encrypt", {"Plaintext": 12}, "NUMBER_VALUE can not be converted to a Blob"),
        ("Encrypt", {"EncryptionContext": "x"}, "Expected map or null"),
        ("Encrypt", {"EncryptionContext": ["x"]}, "Start of list found where not expected"),
        (
            "Encrypt",
            {"EncryptionContext": {"a": 1}},
            "NUMBER_VALUE can not be converted to a String",
        ),
        ("Encrypt", {"GrantTokens": "x"}, "Expected list or null"),
        (
            "Encrypt",
            {"GrantTokens": {"a": "b"}},
            "Start of structure or map found where not expected.",
        ),
        ("Encrypt", {"GrantTokens": [1]}, "NUMBER_VALUE can not be converted to a String"),
        ("Encrypt", {"DryRun": "true"}, "STRING_VALUE can not be converted to a Boolean"),
        ("Encrypt", {"DryRun": 1}, "NUMBER_VALUE can not be converted to a Boolean"),
        ("CreateKey", {"Tags": ["x"]}, "Expected null"),
        (
            "CreateKey",
            {"Tags": [{"TagKey": 5, "TagValue": "v"}]},
            "NUMBER_VALUE can not be converted to a String",
        ),
        (
            "ImportKeyMaterial",
            {"ValidTo": "2030-01-01T00:00:00Z"},
            "STRING_VALUE can not be converted to milliseconds since epoch",
        ),
    ],
)
def test_member_of_the_wrong_json_type_is_a_serialization_error(
    operation: str, request_: dict[str, Any], message: str
) -> None:
    assert serialization_message(operation, orjson.dumps(request_)) == message


def test_type_errors_win_over_validation_errors() -> None:
    body = orjson.dumps({"KeyId": "", "Plaintext": b64(b"x"), "GrantTokens": "x"})
    assert serialization_message("Encrypt", body) == "Expected list or null"


SECRET = "c2VjcmV0"  # base64 of b"secret"


@pytest.mark.parametrize(
    ("plaintext", "reason"),
    [
        (SECRET[:-1], "Base64 encoded length is expected a multiple of 4 bytes but found: 7"),
        (SECRET[:-2] + "!!", "Invalid Base64 character"),
        (SECRET[:4] + "=" + SECRET[5:], "Invalid Base64 character"),
        (SECRET + "\n", "Base64 encoded length is expected a multiple of 4 bytes but found: 9"),
        # "c2VjcmV0Yg==" and "aGk=" with bits set that the padding says are unused
        ("c2VjcmV0Yh==", "Invalid last non-pad Base64 character dectected"),
        ("aGl=", "Invalid last non-pad Base64 character dectected"),
        ("é" * 4, "Invalid Base64 character"),
    ],
)
def test_bad_base64_is_a_serialization_error_that_names_the_member_not_the_value(
    plaintext: str, reason: str
) -> None:
    body = orjson.dumps({"KeyId": "k", "Plaintext": plaintext})
    message = serialization_message("Encrypt", body)
    assert message == f"Value at 'plaintext' can not be converted to a Blob: {reason}"
    assert SECRET[:4] not in message


# --- validation errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "request_", "error"),
    [
        # integer range
        (
            "GenerateRandom",
            {"NumberOfBytes": 1025},
            (
                "Value '1025' at 'numberOfBytes' failed to satisfy constraint: "
                "Member must have value less than or equal to 1024"
            ),
        ),
        (
            "GenerateRandom",
            {"NumberOfBytes": 0},
            (
                "Value '0' at 'numberOfBytes' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            ),
        ),
        (
            "ListKeys",
            {"Limit": 1001},
            (
                "Value '1001' at 'limit' failed to satisfy constraint: "
                "Member must have value less than or equal to 1000"
            ),
        ),
        (
            "ListKeys",
            {"Limit": 0},
            (
                "Value '0' at 'limit' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            ),
        ),
        (
            # Outside Java's int range AWS leaves the value out.
            "ListKeys",
            {"Limit": 99999999999},
            (
                "Value at 'limit' failed to satisfy constraint: "
                "Member must have value less than or equal to 1000"
            ),
        ),
        # required
        (
            "GenerateDataKey",
            {"NumberOfBytes": 32},
            "Value null at 'keyId' failed to satisfy constraint: Member must not be null",
        ),
        # string length
        (
            "DescribeKey",
            {"KeyId": ""},
            (
                "Value '' at 'keyId' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1"
            ),
        ),
        (
            "DescribeKey",
            {"KeyId": "k" * 2049},
            (
                f"Value '{'k' * 2049}' at 'keyId' failed to satisfy constraint: "
                "Member must have length less than or equal to 2048"
            ),
        ),
        # blob length: the value is never echoed
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": b64(bytes(4097))},
            (
                "Value at 'plaintext' failed to satisfy constraint: "
                "Member must have length less than or equal to 4096"
            ),
        ),
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": ""},
            (
                "Value at 'plaintext' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1"
            ),
        ),
        (
            "Decrypt",
            {"CiphertextBlob": b64(bytes(6145))},
            (
                "Value at 'ciphertextBlob' failed to satisfy constraint: "
                "Member must have length less than or equal to 6144"
            ),
        ),
        # sensitive string: no value either
        (
            "CreateCustomKeyStore",
            {"CustomKeyStoreName": "store", "KeyStorePassword": "short"},
            (
                "Value at 'keyStorePassword' failed to satisfy constraint: "
                "Member must have length greater than or equal to 7"
            ),
        ),
        # list length
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": b64(b"x"), "GrantTokens": ["t"] * 11},
            (
                f"Value '[{', '.join(['t'] * 11)}]' at 'grantTokens' failed to satisfy constraint: "
                "Member must have length less than or equal to 10"
            ),
        ),
        # list member constraints, reported once for the list
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": b64(b"x"), "GrantTokens": ["ok", ""]},
            (
                "Value '[ok, ]' at 'grantTokens' failed to satisfy constraint: "
                "Member must satisfy constraint: [Member must have length less than or equal to "
                "8192, Member must have length greater than or equal to 1]"
            ),
        ),
        (
            "CreateGrant",
            {"KeyId": "k", "GranteePrincipal": "p", "Operations": ["Encrypt", "Juggle"]},
            (
                "Value '[Encrypt, Juggle]' at 'operations' failed to satisfy constraint: "
                f"Member must satisfy constraint: [{enum_text('GrantOperation')}]"
            ),
        ),
        # map values
        (
            "Encrypt",
            {"KeyId": "k", "Plaintext": b64(b"x"), "EncryptionContext": {"a": None}},
            (
                "Value '{a=null}' at 'encryptionContext' failed to satisfy constraint: "
                "Map value must satisfy constraint: [Member must not be null]"
            ),
        ),
        # enum
        (
            "CreateKey",
            {"KeyUsage": "SHRED"},
            "Value 'SHRED' at 'keyUsage' failed to satisfy constraint: "
            + enum_text("KeyUsageType"),
        ),
        # pattern
        (
            "CreateAlias",
            {"AliasName": "alias/bad name!", "TargetKeyId": "k"},
            (
                "Value 'alias/bad name!' at 'aliasName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
            ),
        ),
        # nested structures inside a list
        (
            "CreateKey",
            {"Tags": [{"TagKey": "ok", "TagValue": "v"}, {"TagKey": "k" * 129, "TagValue": "v"}]},
            (
                f"Value '{'k' * 129}' at 'tags.2.member.tagKey' failed to satisfy constraint: "
                "Member must have length less than or equal to 128"
            ),
        ),
        (
            "CreateKey",
            {"Tags": [{"TagKey": "team"}]},
            (
                "Value null at 'tags.1.member.tagValue' failed to satisfy constraint: "
                "Member must not be null"
            ),
        ),
        (
            "TagResource",
            {"KeyId": "k", "Tags": [None]},
            "Value null at 'tags.1.member' failed to satisfy constraint: Member must not be null",
        ),
    ],
)
def test_each_constraint_kind_has_the_aws_message(
    operation: str, request_: dict[str, Any], error: str
) -> None:
    assert validation_message(operation, request_) == PREFIX + error


def test_pattern_and_length_failures_are_two_errors_pattern_first() -> None:
    assert validation_message("CreateAlias", {"AliasName": "", "TargetKeyId": "k"}) == (
        "2 validation errors detected: "
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$; "
        "Value '' at 'aliasName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_all_errors_are_counted_in_model_member_order() -> None:
    request = {
        "Tags": [{"TagKey": "", "TagValue": "v"}],
        "KeyUsage": "SHRED",
        "Description": "d" * 8193,
    }
    assert validation_message("CreateKey", request) == (
        "3 validation errors detected: "
        f"Value '{'d' * 8193}' at 'description' failed to satisfy constraint: "
        "Member must have length less than or equal to 8192; "
        f"Value 'SHRED' at 'keyUsage' failed to satisfy constraint: {enum_text('KeyUsageType')}; "
        "Value '' at 'tags.1.member.tagKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_at_most_ten_errors_are_listed() -> None:
    tags = [{"TagKey": "", "TagValue": "v"}] * 12
    message = validation_message("CreateKey", {"Tags": tags})
    assert message.startswith("10 validation errors detected: ")
    assert message.count("failed to satisfy constraint") == 10
    assert "tags.10.member.tagKey" in message
    assert "tags.11.member" not in message


def test_validation_messages_never_echo_plaintext() -> None:
    secret = b"hunter2-" * 600
    request = {"KeyId": "", "Plaintext": b64(secret)}
    message = validation_message("Encrypt", request)
    assert message.startswith("2 validation errors detected: ")
    assert b64(secret)[:16] not in message
    assert "hunter2" not in message


# --- encoding ---------------------------------------------------------------------------


def test_encode_turns_bytes_into_base64_and_drops_none() -> None:
    body = codec("Encrypt").encode(
        {"CiphertextBlob": b"\x00\x01\xfe", "KeyId": KEY_ARN, "EncryptionAlgorithm": None}
    )
    assert body == b'{"CiphertextBlob":"AAH+","KeyId":"' + KEY_ARN.encode() + b'"}'


def test_encode_unwraps_key_bytes_into_base64() -> None:
    body = codec("GenerateDataKey").encode({"Plaintext": KeyBytes(b"\xff" * 3)})
    assert body == b'{"Plaintext":"////"}'


def test_encode_turns_datetimes_into_epoch_seconds() -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    elsewhere = created.astimezone(timezone(timedelta(hours=5)))
    naive = datetime(2024, 1, 2, 3, 4, 5, 250000)
    decoded = orjson.loads(
        codec("DescribeKey").encode(
            {"KeyMetadata": {"CreationDate": created, "DeletionDate": elsewhere, "ValidTo": naive}}
        )
    )
    assert decoded == {
        "KeyMetadata": {
            "CreationDate": 1704164645.25,
            "DeletionDate": 1704164645.25,
            "ValidTo": 1704164645.25,
        }
    }


def test_encode_walks_nested_structures_lists_and_enums() -> None:
    result = {
        "Keys": [{"KeyId": "k", "KeyArn": None}],
        "KeyMetadata": {"KeyState": KeyState.PENDING_DELETION, "Description": None},
        "Truncated": False,
        "PublicKey": bytearray(b"pk"),
        "Tags": (),
    }
    assert orjson.loads(codec("ListKeys").encode(result)) == {
        "Keys": [{"KeyId": "k"}],
        "KeyMetadata": {"KeyState": "PendingDeletion"},
        "Truncated": False,
        "PublicKey": "cGs=",
        "Tags": [],
    }


def test_decode_of_encoded_blob_round_trips() -> None:
    blob = bytes(range(256))
    body = codec("Encrypt").encode({"KeyId": "k", "Plaintext": blob})
    assert codec("Encrypt").decode(body)["Plaintext"] == blob


def test_encode_error_is_type_and_message() -> None:
    assert encode_error(NotFoundException("Key 'k' does not exist")) == (
        b'{"__type":"NotFoundException","message":"Key \'k\' does not exist"}'
    )


def test_encode_error_without_text_leaves_the_message_out() -> None:
    assert encode_error(NotFoundException()) == b'{"__type":"NotFoundException"}'


def test_enum_values_are_listed_in_aws_order_where_recorded_else_the_model_order() -> None:
    # AWS's order for macAlgorithm (LocalStack snapshot test_invalid_generate_mac).
    aws = ["HMAC_SHA_384", "HMAC_SHA_256", "HMAC_SHA_224", "HMAC_SHA_512"]
    assert enum_order("MacAlgorithmSpec", SHAPES["MacAlgorithmSpec"]["enum"]) == aws
    # A set the recording does not cover (a newer model with more values): the model's order.
    grown = [*SHAPES["MacAlgorithmSpec"]["enum"], "HMAC_SHA3_256"]
    assert enum_order("MacAlgorithmSpec", grown) == grown
    assert (
        enum_order("KeyUsageType", SHAPES["KeyUsageType"]["enum"])
        == (SHAPES["KeyUsageType"]["enum"])
    )
