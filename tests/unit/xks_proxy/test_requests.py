"""Request validation, routing, the GCM AAD and the integrity value of the XKS proxy."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from strongroom.xks_proxy import requests as rq
from strongroom.xks_proxy.app import route
from strongroom.xks_proxy.errors import (
    InvalidUriPathException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.xks_proxy.keys import gcm_aad, integrity_value

META = {
    "awsPrincipalArn": "arn:aws:iam::111122223333:user/Alice",
    "kmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k",
    "kmsOperation": "Encrypt",
    "kmsRequestId": "r-1",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _body(**fields: Any) -> bytes:
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def _encrypt(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "requestMetadata": META,
        "plaintext": _b64(b"hi"),
        "encryptionAlgorithm": "AES_GCM",
    }
    fields.update(overrides)
    return _body(**fields)


def _decrypt(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "requestMetadata": META,
        "ciphertext": _b64(b"ct"),
        "encryptionAlgorithm": "AES_GCM",
        "initializationVector": _b64(bytes(12)),
        "authenticationTag": _b64(bytes(16)),
    }
    fields.update(overrides)
    return _body(**fields)


def test_encrypt_parses() -> None:
    parsed = rq.parse_encrypt(
        _encrypt(
            additionalAuthenticatedData=_b64(b"aad"),
            ciphertextDataIntegrityValueAlgorithm="SHA_256",
        )
    )
    assert parsed.plaintext == b"hi" and parsed.aad == b"aad" and parsed.cdiv_algorithm == "SHA_256"
    assert parsed.metadata == rq.RequestMetadata(
        "r-1", "Encrypt", META["awsPrincipalArn"], META["kmsKeyArn"]
    )


def test_unknown_kms_operation_and_fields_are_accepted() -> None:
    parsed = rq.parse_encrypt(
        _encrypt(requestMetadata={**META, "kmsOperation": "FutureOp"}, extra=1)
    )
    assert parsed.metadata.kms_operation == "FutureOp"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (_encrypt(requestMetadata=None), "requestMetadata is required"),
        (_encrypt(requestMetadata="x"), "requestMetadata must be"),
        (_encrypt(requestMetadata={**META, "kmsRequestId": None}), "requestMetadata.kmsRequestId"),
        (_encrypt(requestMetadata={**META, "kmsKeyArn": None}), "requestMetadata.kmsKeyArn"),
        (
            _encrypt(requestMetadata={**META, "awsPrincipalArn": 5}),
            "requestMetadata.awsPrincipalArn",
        ),
        (_encrypt(plaintext=None), "plaintext is required"),
        (_encrypt(plaintext="***"), "plaintext is not valid Base64"),
        (_encrypt(plaintext=""), "plaintext must not be empty"),
        (_encrypt(plaintext=5), "plaintext must be a Base64 string"),
        (_encrypt(encryptionAlgorithm=None), "encryptionAlgorithm is required"),
        (_encrypt(encryptionAlgorithm="AES_CBC"), "encryptionAlgorithm must be AES_GCM"),
        (_encrypt(ciphertextDataIntegrityValueAlgorithm="MD5"), "SHA_256"),
        (_encrypt(additionalAuthenticatedData=_b64(bytes(8193))), "longer than 8192"),
    ],
)
def test_encrypt_rejects(body: bytes, says: str) -> None:
    with pytest.raises(ValidationException, match=says):
        rq.parse_encrypt(body)


def test_oversized_plaintext_is_unsupported_but_spec_minimum_is_served() -> None:
    assert rq.parse_encrypt(_encrypt(plaintext=_b64(bytes(4300)))).plaintext == bytes(4300)
    with pytest.raises(UnsupportedOperationException):
        rq.parse_encrypt(_encrypt(plaintext=_b64(bytes(rq.MAX_DATA_BYTES + 1))))


def test_decrypt_parses_16_byte_iv_and_metadata() -> None:
    parsed = rq.parse_decrypt(
        _decrypt(initializationVector=_b64(bytes(16)), ciphertextMetadata=_b64(b"v=1"))
    )
    assert parsed.iv == bytes(16) and parsed.ciphertext_metadata == b"v=1" and parsed.aad is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_decrypt(initializationVector=_b64(bytes(8))), "12 or 16 bytes"),
        (_decrypt(initializationVector=None), "initializationVector is required"),
        (_decrypt(authenticationTag=_b64(bytes(12))), "16 bytes"),
        (_decrypt(authenticationTag=None), "authenticationTag is required"),
        (_decrypt(ciphertext=None), "ciphertext is required"),
        (_decrypt(ciphertextMetadata=_b64(bytes(21))), "longer than 20"),
        (_decrypt(encryptionAlgorithm="RSA"), "AES_GCM"),
    ],
)
def test_decrypt_rejects(body: bytes, says: str) -> None:
    with pytest.raises(ValidationException, match=says):
        rq.parse_decrypt(body)


def test_metadata_and_health_requirements() -> None:
    assert rq.parse_metadata(_body(requestMetadata={**META, "kmsKeyArn": None})).kms_key_arn is None
    with pytest.raises(ValidationException, match="awsPrincipalArn"):
        rq.parse_metadata(_body(requestMetadata={"kmsRequestId": "r", "kmsOperation": "CreateKey"}))
    health = rq.parse_health(
        _body(requestMetadata={"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"})
    )
    assert health.kms_operation == "KmsHealthCheck"
    with pytest.raises(ValidationException, match="kmsOperation"):
        rq.parse_health(_body(requestMetadata={"kmsRequestId": "r"}))


@pytest.mark.parametrize("key_id", ["foo", "a.b_c-D9", "k" * 128])
def test_valid_key_ids(key_id: str) -> None:
    assert rq.check_key_id(key_id) == key_id


@pytest.mark.parametrize("key_id", ["", "k" * 129, "a b", "a%2Fb", "ü"])
def test_invalid_key_ids(key_id: str) -> None:
    with pytest.raises(ValidationException):
        rq.check_key_id(key_id)


def test_routes() -> None:
    assert route("/kms/xks/v1/health") == route("/kms/xks/v1/health")
    assert route("/kms/xks/v1/health").prefix == ""
    found = route("/p/q/kms/xks/v1/keys/foo/decrypt")
    assert (found.prefix, found.operation, found.key_id) == ("/p/q", "Decrypt", "foo")
    assert route("/x/kms/xks/v1/keys/k/metadata").operation == "GetKeyMetadata"
    for bad in (
        "/",
        "/kms/xks/v1/keys/foo",
        "/kms/xks/v1/keys/foo/sign",
        "/kms/xks/v2/health",
        "/kms/xks/v1/keys/a/b/encrypt",
    ):
        with pytest.raises(InvalidUriPathException):
            route(bad)


def test_gcm_aad_carries_both_lengths() -> None:
    assert gcm_aad(None, None) == b"\x00\x00\x00"
    assert gcm_aad(b"ab", b"xyz") == b"\x00\x02ab\x03xyz"
    assert gcm_aad(bytes(300), None)[:2] == b"\x01\x2c"
    # metadata passed as AAD, or the reverse, gives another AAD
    assert gcm_aad(b"m", None) != gcm_aad(None, b"m")


def test_integrity_value_matches_the_spec_example() -> None:
    value = integrity_value(
        b"project=nile,department=marketing",
        base64.b64decode("a2V5X3ZlcnNpb249MQ=="),
        base64.b64decode("HMrlRw85cAJUd5Ax"),
        base64.b64decode("ghxkK1txeDNn3q8Y"),
        base64.b64decode("vBxN2ncH1oEkR8WVXpmyYQ=="),
    )
    assert base64.b64encode(value).decode() == "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="


def test_what_the_standard_json_parser_takes_is_taken() -> None:
    # orjson refuses NaN, a lone surrogate and UTF-16; the standard parser (and so the proxy,
    # for fields it ignores or checks itself) takes them.
    nan = _encrypt()[:-1] + b', "extra": NaN}'
    assert rq.parse_encrypt(nan).plaintext == b"hi"
    surrogate = _encrypt(requestMetadata={**META, "kmsRequestId": "r-\ud800"})
    assert rq.parse_encrypt(surrogate).metadata.kms_request_id == "r-\ud800"
    utf16 = _encrypt().decode().encode("utf-16")
    assert rq.parse_encrypt(utf16).plaintext == b"hi"
    with pytest.raises(ValidationException, match="not valid JSON"):
        rq.parse_encrypt(b'{"plaintext": "\xff"}')
