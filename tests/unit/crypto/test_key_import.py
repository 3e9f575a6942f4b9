"""Imported key material: which wrappings are refused, unwrapping of what a user wraps,
the rules for material of each key spec, material ids and import tokens."""

from __future__ import annotations

import hashlib
import os
import struct
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.crypto.key_import import (
    HMAC_KEY_LENGTHS,
    canonical_material,
    check_wrapping,
    generated_material_id,
    imported_material_id,
    new_import_token,
    new_wrapping_key,
    token_digest,
    token_expiry,
    unwrap_material,
)
from strongroom.domain.enums import KeySpec, WrappingAlgorithm, WrappingKeySpec
from strongroom.domain.errors import (
    IncorrectKeyMaterialException,
    InvalidCiphertextException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.secrets import KeyBytes

pytestmark = pytest.mark.unit

W = WrappingAlgorithm
S = KeySpec
ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture(scope="module")
def wrapping_key() -> tuple[KeyBytes, bytes]:
    return new_wrapping_key(WrappingKeySpec.RSA_2048)


def _oaep(algorithm: WrappingAlgorithm) -> padding.OAEP:
    h: hashes.HashAlgorithm = (
        hashes.SHA1() if algorithm.value.endswith("SHA_1") else hashes.SHA256()
    )
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


def _wrap(public_der: bytes, algorithm: WrappingAlgorithm, material: bytes) -> bytes:
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    if algorithm in (W.RSAES_OAEP_SHA_1, W.RSAES_OAEP_SHA_256):
        return public.encrypt(material, _oaep(algorithm))
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, _oaep(algorithm)) + aes_key_wrap_with_padding(aes_key, material)


@pytest.mark.parametrize(
    ("spec", "algorithm", "wrapping", "error"),
    [
        (
            S.SYMMETRIC_DEFAULT,
            W.RSAES_PKCS1_V1_5,
            WrappingKeySpec.RSA_4096,
            UnsupportedOperationException,
        ),
        (S.SYMMETRIC_DEFAULT, W.SM2PKE, WrappingKeySpec.SM2, UnsupportedOperationException),
        (
            S.SYMMETRIC_DEFAULT,
            W.RSAES_OAEP_SHA_256,
            WrappingKeySpec.SM2,
            UnsupportedOperationException,
        ),
        (S.RSA_2048, W.RSAES_OAEP_SHA_256, WrappingKeySpec.RSA_4096, ValidationException),
        (S.RSA_4096, W.RSAES_OAEP_SHA_1, WrappingKeySpec.RSA_4096, ValidationException),
        (S.ECC_NIST_P521, W.RSAES_OAEP_SHA_1, WrappingKeySpec.RSA_2048, ValidationException),
        (S.ECC_NIST_P521, W.RSAES_OAEP_SHA_256, WrappingKeySpec.RSA_2048, ValidationException),
    ],
)
def test_refused_wrappings(
    spec: KeySpec, algorithm: WrappingAlgorithm, wrapping: WrappingKeySpec, error: type
) -> None:
    with pytest.raises(error):
        check_wrapping(spec, algorithm, wrapping)


@pytest.mark.parametrize(
    ("spec", "algorithm", "wrapping"),
    [
        (S.SYMMETRIC_DEFAULT, algorithm, wrapping)
        for algorithm in (
            W.RSAES_OAEP_SHA_1,
            W.RSAES_OAEP_SHA_256,
            W.RSA_AES_KEY_WRAP_SHA_1,
            W.RSA_AES_KEY_WRAP_SHA_256,
        )
        for wrapping in (
            WrappingKeySpec.RSA_2048,
            WrappingKeySpec.RSA_3072,
            WrappingKeySpec.RSA_4096,
        )
    ]
    + [
        (S.RSA_2048, W.RSA_AES_KEY_WRAP_SHA_256, WrappingKeySpec.RSA_2048),
        (S.ECC_NIST_P521, W.RSAES_OAEP_SHA_256, WrappingKeySpec.RSA_3072),
        (S.ECC_NIST_P521, W.RSA_AES_KEY_WRAP_SHA_1, WrappingKeySpec.RSA_2048),
        (S.HMAC_512, W.RSAES_OAEP_SHA_1, WrappingKeySpec.RSA_2048),
    ],
)
def test_allowed_wrappings(
    spec: KeySpec, algorithm: WrappingAlgorithm, wrapping: WrappingKeySpec
) -> None:
    check_wrapping(spec, algorithm, wrapping)


@pytest.mark.parametrize(
    "algorithm",
    [
        W.RSAES_OAEP_SHA_1,
        W.RSAES_OAEP_SHA_256,
        W.RSA_AES_KEY_WRAP_SHA_1,
        W.RSA_AES_KEY_WRAP_SHA_256,
    ],
)
def test_what_a_user_wraps_unwraps(
    wrapping_key: tuple[KeyBytes, bytes], algorithm: WrappingAlgorithm
) -> None:
    private, public = wrapping_key
    material = os.urandom(32)
    wrapped = _wrap(public, algorithm, material)
    assert unwrap_material(algorithm, WrappingKeySpec.RSA_2048, private, wrapped).value == material


@pytest.mark.parametrize("algorithm", [W.RSAES_OAEP_SHA_256, W.RSA_AES_KEY_WRAP_SHA_256])
def test_anything_else_is_an_opaque_invalid_ciphertext(
    wrapping_key: tuple[KeyBytes, bytes], algorithm: WrappingAlgorithm
) -> None:
    private, public = wrapping_key
    good = _wrap(public, algorithm, os.urandom(32))
    other_hash = (
        W.RSAES_OAEP_SHA_1 if algorithm is W.RSAES_OAEP_SHA_256 else W.RSA_AES_KEY_WRAP_SHA_1
    )
    aes_of_16 = rsa_public(public).encrypt(os.urandom(16), _oaep(algorithm)) + b"x" * 40
    for wrapped in (
        good[:-1] + bytes((good[-1] ^ 1,)),
        good[:200],
        _wrap(public, other_hash, os.urandom(32)),
        os.urandom(len(good)),
        aes_of_16,
    ):
        with pytest.raises(InvalidCiphertextException) as info:
            unwrap_material(algorithm, WrappingKeySpec.RSA_2048, private, wrapped)
        assert info.value.message == ""


def rsa_public(public_der: bytes) -> rsa.RSAPublicKey:
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    return public


def test_symmetric_material_is_32_bytes() -> None:
    material = KeyBytes(os.urandom(32))
    assert canonical_material(S.SYMMETRIC_DEFAULT, material) == material
    for size in (0, 16, 31, 33):
        with pytest.raises(IncorrectKeyMaterialException):
            canonical_material(S.SYMMETRIC_DEFAULT, KeyBytes(os.urandom(size)))


@pytest.mark.parametrize("spec", sorted(HMAC_KEY_LENGTHS))
def test_hmac_material_length_rules(spec: KeySpec) -> None:
    low, high = HMAC_KEY_LENGTHS[spec]
    assert low == int(spec.value.split("_")[1]) // 8
    for size in (low, high):
        canonical_material(spec, KeyBytes(os.urandom(size)))
    for size in (low - 1, high + 1):
        with pytest.raises(IncorrectKeyMaterialException):
            canonical_material(spec, KeyBytes(os.urandom(size)))


def test_key_pair_material_is_stored_as_pkcs8_of_its_spec() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    sec1 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert canonical_material(S.ECC_NIST_P256, KeyBytes(pkcs8)).value == pkcs8
    # The same key in another encoding is the same material.
    assert canonical_material(S.ECC_NIST_P256, KeyBytes(sec1)).value == pkcs8
    for wrong in (S.ECC_NIST_P384, S.RSA_2048):
        with pytest.raises(IncorrectKeyMaterialException):
            canonical_material(wrong, KeyBytes(pkcs8))
    with pytest.raises(IncorrectKeyMaterialException):
        canonical_material(S.ECC_NIST_P256, KeyBytes(b"\x30\x03\x02\x01\x00"))


def test_imported_material_id_binds_key_and_material() -> None:
    material = KeyBytes(os.urandom(32))
    first = imported_material_id(ARN, material)
    assert len(first) == 64 and int(first, 16) >= 0
    assert imported_material_id(ARN, material) == first
    assert imported_material_id(ARN + "0", material) != first
    assert imported_material_id(ARN, KeyBytes(os.urandom(32))) != first
    assert material.value.hex() not in first


def test_generated_material_id_is_the_digest_of_key_arn_and_version() -> None:
    # The id DescribeKey showed before migration 0005; it must never change.
    def field(text: str) -> bytes:
        return struct.pack(">I", len(text)) + text.encode()

    encoded = struct.pack(">I", 2) + field("keyArn") + field(ARN) + field("version") + field("7")
    assert generated_material_id(ARN, 7) == hashlib.sha256(encoded).hexdigest()


def test_import_token_carries_its_expiry() -> None:
    valid_to = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = new_import_token(valid_to)
    assert len(token) == 41 and token[0] == 1
    assert token_expiry(token) == valid_to
    assert new_import_token(valid_to) != token
    assert token_digest(token) == hashlib.sha256(token).hexdigest()
    for foreign in (b"", b"x", os.urandom(40), b"\x02" + token[1:]):
        assert token_expiry(foreign) is None
    # Random bytes that begin like a token (1 in 256 of them) carry a time no date holds.
    for far in (b"\xff" * 8, (2**62).to_bytes(8, "big"), (253402300800).to_bytes(8, "big")):
        assert token_expiry(token[:33] + far) is None
    assert token_expiry(
        new_import_token(valid_to + timedelta(seconds=1.5))
    ) == valid_to + timedelta(seconds=1)
