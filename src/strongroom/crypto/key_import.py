"""Imported key material (bring your own key): wrapping keys, unwrapping, material rules, ids.

AWS KMS Developer Guide, "Importing key material" (steps 2-4) and the model's
``GetParametersForImportRequest`` / ``ImportKeyMaterialRequest`` docs:

* the wrapping key is an RSA key pair of ``WrappingKeySpec``; its public key travels as a
  DER SubjectPublicKeyInfo;
* RSAES_OAEP_SHA_1 / _SHA_256: the key material is RSAES-OAEP encrypted under the wrapping
  public key (PKCS #1 v2.2 §7.1, MGF1 with the same hash, empty label);
* RSA_AES_KEY_WRAP_SHA_1 / _SHA_256: a fresh 256-bit AES key, RSAES-OAEP encrypted under
  the wrapping public key, followed by the key material wrapped under that AES key with
  AES Key Wrap with Padding (RFC 5649); the first part is as long as the RSA modulus;
* RSAES_PKCS1_V1_5 is no longer supported (since 2023-10-10); SM2 and SM2PKE serve only
  China Regions: this server refuses them;
* the material: a symmetric encryption key is 32 bytes; an HMAC key's length depends on
  its spec (``HMAC_KEY_LENGTHS``); a key pair is its private key, DER PKCS#8 (the public
  key is derived from it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

from strongroom.crypto.asymmetric import generate_private_key, public_key_der, rsa_decrypt
from strongroom.crypto.asymmetric_keys import load_private_key
from strongroom.domain.enums import (
    EncryptionAlgorithm,
    KeySpec,
    WrappingAlgorithm,
    WrappingKeySpec,
)
from strongroom.domain.errors import (
    IncorrectKeyMaterialException,
    InvalidCiphertextException,
    KeyStoreError,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.ids import key_arn
from strongroom.domain.models import Key
from strongroom.domain.secrets import KeyBytes

W = WrappingAlgorithm
S = KeySpec

WRAPPING_KEY_SPECS: Mapping[WrappingKeySpec, KeySpec] = {
    WrappingKeySpec.RSA_2048: S.RSA_2048,
    WrappingKeySpec.RSA_3072: S.RSA_3072,
    WrappingKeySpec.RSA_4096: S.RSA_4096,
}
"""The RSA key spec of each wrapping key spec this server offers (SM2 is China-only)."""

_OAEP_OF: Mapping[WrappingAlgorithm, EncryptionAlgorithm] = {
    W.RSAES_OAEP_SHA_1: EncryptionAlgorithm.RSAES_OAEP_SHA_1,
    W.RSAES_OAEP_SHA_256: EncryptionAlgorithm.RSAES_OAEP_SHA_256,
    W.RSA_AES_KEY_WRAP_SHA_1: EncryptionAlgorithm.RSAES_OAEP_SHA_1,
    W.RSA_AES_KEY_WRAP_SHA_256: EncryptionAlgorithm.RSAES_OAEP_SHA_256,
}
"""The RSAES-OAEP variant each supported wrapping algorithm uses."""

_RSA_AES = frozenset({W.RSA_AES_KEY_WRAP_SHA_1, W.RSA_AES_KEY_WRAP_SHA_256})
_RSA_KEY_SPECS = frozenset({S.RSA_2048, S.RSA_3072, S.RSA_4096})
_AES_KEY_BYTES = 32

HMAC_KEY_LENGTHS: Mapping[KeySpec, tuple[int, int]] = {
    S.HMAC_224: (28, 64),
    S.HMAC_256: (32, 64),
    S.HMAC_384: (48, 128),
    S.HMAC_512: (64, 128),
}
"""Shortest and longest imported HMAC key, in bytes, per spec (Developer Guide,
"Requirements for imported key material")."""

SYMMETRIC_KEY_BYTES = 32
IMPORT_TOKEN_V1 = 1
_TOKEN_RANDOM_BYTES = 32
_TOKEN_EXPIRY = struct.Struct(">Q")
_TOKEN_SIZE = 1 + _TOKEN_RANDOM_BYTES + _TOKEN_EXPIRY.size
_MATERIAL_ID_LABEL = b"strongroom imported key material id\x00"


def check_wrapping(
    key_spec: KeySpec, algorithm: WrappingAlgorithm, wrapping_spec: WrappingKeySpec
) -> None:
    """Refuse the combinations AWS refuses for material of ``key_spec``.

    UnsupportedOperationException: RSAES_PKCS1_V1_5 (withdrawn), SM2 and SM2PKE (China
    Regions only). ValidationException: RSAES_OAEP_* for an RSA private key (too long for
    RSAES-OAEP: "To import an RSA private key, you must use an RSA_AES wrapping algorithm"),
    and RSAES_OAEP_* with an RSA_2048 wrapping key for ECC_NIST_P521 material.
    """
    if algorithm is W.RSAES_PKCS1_V1_5:
        raise UnsupportedOperationException(
            "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use "
            "RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
        )
    if algorithm is W.SM2PKE or wrapping_spec not in WRAPPING_KEY_SPECS:
        raise UnsupportedOperationException(
            "The SM2 wrapping key spec and the SM2PKE wrapping algorithm are available only "
            "in China Regions."
        )
    if algorithm in _RSA_AES:
        return
    if key_spec in _RSA_KEY_SPECS:
        raise ValidationException(
            f"WrappingAlgorithm {algorithm} cannot wrap {key_spec} key material. To import an "
            "RSA private key, use an RSA_AES_KEY_WRAP_SHA_* wrapping algorithm."
        )
    if key_spec is S.ECC_NIST_P521 and wrapping_spec is WrappingKeySpec.RSA_2048:
        raise ValidationException(
            f"WrappingAlgorithm {algorithm} with WrappingKeySpec RSA_2048 cannot wrap "
            "ECC_NIST_P521 key material. Use a larger wrapping key spec or an "
            "RSA_AES_KEY_WRAP_SHA_* wrapping algorithm."
        )


def new_wrapping_key(wrapping_spec: WrappingKeySpec) -> tuple[KeyBytes, bytes]:
    """A fresh wrapping key pair: (PKCS#8 DER private key, DER SubjectPublicKeyInfo)."""
    spec = WRAPPING_KEY_SPECS[wrapping_spec]
    private = generate_private_key(spec)
    return private, public_key_der(spec, private)


def unwrap_material(
    algorithm: WrappingAlgorithm,
    wrapping_spec: WrappingKeySpec,
    wrapping_key: KeyBytes,
    encrypted: bytes,
) -> KeyBytes:
    """The key material inside ``encrypted``; InvalidCiphertextException (no detail) for
    anything that does not unwrap under ``wrapping_key`` with ``algorithm``."""
    spec = WRAPPING_KEY_SPECS[wrapping_spec]
    oaep = _OAEP_OF[algorithm]
    if algorithm not in _RSA_AES:
        return KeyBytes(rsa_decrypt(spec, wrapping_key, encrypted, oaep))
    modulus_bytes = int(spec.value.rsplit("_", 1)[1]) // 8
    if len(encrypted) <= modulus_bytes:
        raise InvalidCiphertextException()
    aes_key = rsa_decrypt(spec, wrapping_key, encrypted[:modulus_bytes], oaep)
    if len(aes_key) != _AES_KEY_BYTES:
        raise InvalidCiphertextException()
    try:
        return KeyBytes(aes_key_unwrap_with_padding(aes_key, encrypted[modulus_bytes:]))
    except InvalidUnwrap:
        raise InvalidCiphertextException() from None


def canonical_material(spec: KeySpec, material: KeyBytes) -> KeyBytes:
    """Imported material in the form this server stores for ``spec``: the secret itself for
    symmetric and HMAC keys, the private key re-encoded as DER PKCS#8 for key pairs (so the
    same key in another valid encoding is the same material). IncorrectKeyMaterialException
    when it is not material of ``spec``."""
    if spec is S.SYMMETRIC_DEFAULT:
        if len(material) != SYMMETRIC_KEY_BYTES:
            raise IncorrectKeyMaterialException(
                f"Key material for a {spec} key must be {SYMMETRIC_KEY_BYTES} bytes long."
            )
        return material
    lengths = HMAC_KEY_LENGTHS.get(spec)
    if lengths is not None:
        low, high = lengths
        if not low <= len(material) <= high:
            raise IncorrectKeyMaterialException(
                f"Key material for a {spec} key must be {low} to {high} bytes long."
            )
        return material
    try:
        key = load_private_key(spec, material, validate=True)
        encoded = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    except (KeyStoreError, ValueError):
        raise IncorrectKeyMaterialException(
            f"Key material for a {spec} key must be its private key, DER-encoded PKCS #8."
        ) from None
    return KeyBytes(encoded)


def imported_material_id(key_arn: str, material: KeyBytes) -> str:
    """The KeyMaterialId of imported material: like AWS's, derived from the KMS key and the
    material (HMAC-SHA256 keyed with the material), so importing the same material into the
    same key again gives the same id, and the id reveals nothing of the material."""
    mac = hmac.new(material.value, _MATERIAL_ID_LABEL + key_arn.encode(), hashlib.sha256)
    return mac.hexdigest()


def material_id_arn(key: Key) -> str:
    """The ARN that KeyMaterialIds derive from: for a multi-Region key the Region is left
    out, so every related key shows the same ids for the material they share (AWS: the id
    derives from the key ID and the material)."""
    return key.arn if key.primary_region is None else key_arn("", key.account, key.key_id)


# encode_context({"keyArn": ..., "version": ...}) is these parts around the two values
# (two pairs, "keyArn" sorting first): written out, a Decrypt of a key whose id is not kept
# (KeyCache.generated_material_id) does not sort and encode a dict.
_ID_PAIRS = struct.pack(">II", 2, 6) + b"keyArn"
_ID_VERSION = struct.pack(">I", 7) + b"version"
_ID_LENGTH = struct.Struct(">I")


def generated_material_id(key_arn: str, version: int) -> str:
    """The KeyMaterialId of material this server generated: a digest of the key ARN and the
    version (64 hex digits, the form of AWS's ids): SHA-256 of
    ``encode_context({"keyArn": key_arn, "version": str(version)})``."""
    arn, number = key_arn.encode(), str(version).encode()
    length = _ID_LENGTH.pack
    aad = b"".join((_ID_PAIRS, length(len(arn)), arn, _ID_VERSION, length(len(number)), number))
    return hashlib.sha256(aad).hexdigest()


def new_import_token(valid_to: datetime) -> bytes:
    """A fresh import token: a version byte (1), 32 random bytes and the time it expires
    (epoch seconds, 8 bytes big-endian), 41 bytes. The server keeps only its digest
    (``token_digest``); the expiry lets it tell an expired token whose parameters are
    already pruned from one it never issued."""
    expiry = _TOKEN_EXPIRY.pack(int(valid_to.timestamp()))
    return bytes((IMPORT_TOKEN_V1,)) + os.urandom(_TOKEN_RANDOM_BYTES) + expiry


def token_expiry(token: bytes) -> datetime | None:
    """The expiry a token of this server's format carries (unauthenticated: a hint for the
    error message only), or None for anything else."""
    if len(token) != _TOKEN_SIZE or token[0] != IMPORT_TOKEN_V1:
        return None
    (seconds,) = _TOKEN_EXPIRY.unpack_from(token, _TOKEN_SIZE - _TOKEN_EXPIRY.size)
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # beyond any date: not a token it issued
        return None


def token_digest(token: bytes) -> str:
    """The SHA-256 of an import token, hex: how the server finds the token's parameters."""
    return hashlib.sha256(token).hexdigest()
