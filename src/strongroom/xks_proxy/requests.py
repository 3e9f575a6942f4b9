"""The XKS Proxy API's request bodies, parsed and validated (pure: no token, no I/O).

Each ``parse_*`` takes the raw body and returns a frozen dataclass, or raises
ValidationException naming the field and the rule. Sizes follow the spec: the proxy must
accept 4300 bytes of plaintext or ciphertext and 8192 bytes of AAD; larger inputs up to
``MAX_DATA_BYTES`` are served, beyond that UnsupportedOperationException (the spec's answer
to a size this implementation does not support). Unknown fields are ignored, as are
``kmsOperation`` values the proxy does not know (the spec says the proxy must not reject
those).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from strongroom.xks_proxy.errors import UnsupportedOperationException, ValidationException

MAX_BODY_BYTES = 256 * 1024
MAX_DATA_BYTES = 64 * 1024
MAX_AAD_BYTES = 8192
MAX_METADATA_BYTES = 20
IV_LENGTHS = (12, 16)
TAG_LENGTH = 16
ENCRYPTION_ALGORITHM = "AES_GCM"
CDIV_ALGORITHM = "SHA_256"

KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""An externalKeyId: at most 128 letters, digits, hyphens, periods and underscores."""


@dataclass(frozen=True)
class RequestMetadata:
    """The caller's context: logged, never trusted for anything but the log."""

    kms_request_id: str
    kms_operation: str
    aws_principal_arn: str | None = None
    kms_key_arn: str | None = None


@dataclass(frozen=True)
class EncryptRequest:
    metadata: RequestMetadata
    plaintext: bytes
    aad: bytes | None
    cdiv_algorithm: str | None


@dataclass(frozen=True)
class DecryptRequest:
    metadata: RequestMetadata
    ciphertext: bytes
    ciphertext_metadata: bytes | None
    aad: bytes | None
    iv: bytes
    tag: bytes


def check_key_id(key_id: str) -> str:
    """``key_id`` when it is a valid externalKeyId; ValidationException otherwise."""
    if not KEY_ID.fullmatch(key_id):
        raise ValidationException(
            "keyId must be 1 to 128 characters of A-Z, a-z, 0-9, hyphen, period or underscore"
        )
    return key_id


def _object(body: bytes) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        raise UnsupportedOperationException(f"request body is longer than {MAX_BODY_BYTES} bytes")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson is stricter than the standard library (NaN, lone surrogates, a BOM): what
        # the standard parser takes is still taken, only more slowly.
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ValidationException("request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ValidationException("request body must be a JSON object")
    return parsed


def _string(container: dict[str, Any], name: str, where: str, *, required: bool) -> str | None:
    value = container.get(name)
    if value is None:
        if required:
            raise ValidationException(f"{where}{name} is required")
        return None
    if not isinstance(value, str) or not value:
        raise ValidationException(f"{where}{name} must be a non-empty string")
    return value


def _base64(
    body: dict[str, Any],
    name: str,
    *,
    required: bool,
    max_bytes: int,
    oversize: type[ValidationException] | type[UnsupportedOperationException] = ValidationException,
    allow_empty: bool = False,
) -> bytes | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ValidationException(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ValidationException(f"{name} must be a Base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationException(f"{name} is not valid Base64") from None
    if not decoded and not allow_empty:
        raise ValidationException(f"{name} must not be empty")
    if len(decoded) > max_bytes:
        raise oversize(f"{name} is longer than {max_bytes} bytes")
    return decoded


def _metadata(body: dict[str, Any], *, key_operation: bool, key_arn: bool) -> RequestMetadata:
    raw = body.get("requestMetadata")
    if raw is None:
        raise ValidationException("requestMetadata is required")
    if not isinstance(raw, dict):
        raise ValidationException("requestMetadata must be a JSON object")
    where = "requestMetadata."
    request_id = _string(raw, "kmsRequestId", where, required=True)
    operation = _string(raw, "kmsOperation", where, required=True)
    principal = _string(raw, "awsPrincipalArn", where, required=key_operation)
    arn = _string(raw, "kmsKeyArn", where, required=key_arn)
    assert request_id is not None and operation is not None
    return RequestMetadata(request_id, operation, principal, arn)


def parse_health(body: bytes) -> RequestMetadata:
    """GetHealthStatus: only ``requestMetadata`` (kmsRequestId, kmsOperation)."""
    return _metadata(_object(body), key_operation=False, key_arn=False)


def parse_metadata(body: bytes) -> RequestMetadata:
    """GetKeyMetadata: ``requestMetadata`` with awsPrincipalArn (kmsKeyArn optional)."""
    return _metadata(_object(body), key_operation=True, key_arn=False)


def _algorithm(body: dict[str, Any]) -> None:
    algorithm = body.get("encryptionAlgorithm")
    if algorithm is None:
        raise ValidationException("encryptionAlgorithm is required")
    if algorithm != ENCRYPTION_ALGORITHM:
        raise ValidationException(f"encryptionAlgorithm must be {ENCRYPTION_ALGORITHM}")


def parse_encrypt(body: bytes) -> EncryptRequest:
    """Encrypt: plaintext, encryptionAlgorithm AES_GCM, optional additionalAuthenticatedData
    and ciphertextDataIntegrityValueAlgorithm (SHA_256)."""
    parsed = _object(body)
    metadata = _metadata(parsed, key_operation=True, key_arn=True)
    plaintext = _base64(
        parsed,
        "plaintext",
        required=True,
        max_bytes=MAX_DATA_BYTES,
        oversize=UnsupportedOperationException,
    )
    _algorithm(parsed)
    aad = _base64(
        parsed,
        "additionalAuthenticatedData",
        required=False,
        max_bytes=MAX_AAD_BYTES,
        allow_empty=True,
    )
    cdiv = parsed.get("ciphertextDataIntegrityValueAlgorithm")
    if cdiv is not None and cdiv != CDIV_ALGORITHM:
        raise ValidationException(f"ciphertextDataIntegrityValueAlgorithm must be {CDIV_ALGORITHM}")
    assert plaintext is not None
    return EncryptRequest(metadata, plaintext, aad, cdiv)


def parse_decrypt(body: bytes) -> DecryptRequest:
    """Decrypt: ciphertext, encryptionAlgorithm AES_GCM, initializationVector (12 or 16
    bytes), authenticationTag (16 bytes), optional additionalAuthenticatedData and
    ciphertextMetadata (at most 20 bytes)."""
    parsed = _object(body)
    metadata = _metadata(parsed, key_operation=True, key_arn=True)
    ciphertext = _base64(
        parsed,
        "ciphertext",
        required=True,
        max_bytes=MAX_DATA_BYTES,
        oversize=UnsupportedOperationException,
    )
    _algorithm(parsed)
    ciphertext_metadata = _base64(
        parsed,
        "ciphertextMetadata",
        required=False,
        max_bytes=MAX_METADATA_BYTES,
        allow_empty=True,
    )
    aad = _base64(
        parsed,
        "additionalAuthenticatedData",
        required=False,
        max_bytes=MAX_AAD_BYTES,
        allow_empty=True,
    )
    iv = _base64(parsed, "initializationVector", required=True, max_bytes=16)
    tag = _base64(parsed, "authenticationTag", required=True, max_bytes=TAG_LENGTH)
    assert ciphertext is not None and iv is not None and tag is not None
    if len(iv) not in IV_LENGTHS:
        raise ValidationException("initializationVector must be 12 or 16 bytes")
    if len(tag) != TAG_LENGTH:
        raise ValidationException(f"authenticationTag must be {TAG_LENGTH} bytes")
    return DecryptRequest(metadata, ciphertext, ciphertext_metadata, aad, iv, tag)
