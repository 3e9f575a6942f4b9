"""Imported key material (bring your own key) through boto3: keys of origin EXTERNAL,
GetParametersForImport for every wrapping algorithm and key spec, ImportKeyMaterial for
symmetric, HMAC and asymmetric keys wrapped client-side as the AWS KMS Developer Guide
shows, re-import, expiry and DeleteImportedKeyMaterial as cryptographic erasure (the wrapped
material leaves the database), and every error on the way."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from conftest import run_strongroom, start_server, stop_server

from ._byok import (
    NO_EXPIRY,
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_SPECS,
    all_wrapped_materials,
    database_url,
    import_material,
    open_blob,
    openssl_wrap,
    stored_materials,
    stored_versions,
    wrap,
)
from ._in_process import InProcess, fresh_database, in_process, settle
from ._support import assert_kms_error, eventually, service_change

pytestmark = pytest.mark.compat

MATERIAL_ID = re.compile(r"[0-9a-f]{64}")


def _external(kms: Any, **kwargs: Any) -> dict[str, Any]:
    meta: dict[str, Any] = kms.create_key(Origin="EXTERNAL", **kwargs)["KeyMetadata"]
    return meta


def _describe(kms: Any, key: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    return meta


def _pkcs8(private: Any) -> bytes:
    der: bytes = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return der


def _spki(private: Any) -> bytes:
    der: bytes = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


# -- keys of origin EXTERNAL ------------------------------------------------------------


def test_external_key_is_created_pending_import_without_material(kms: Any) -> None:
    key = _external(kms, Description="byok")
    assert key["Origin"] == "EXTERNAL"
    assert key["KeyState"] == "PendingImport" and key["Enabled"] is False
    meta = _describe(kms, key)
    assert meta["KeyState"] == "PendingImport" and meta["Origin"] == "EXTERNAL"
    for absent in ("CurrentKeyMaterialId", "ExpirationModel", "ValidTo"):
        assert absent not in meta
    assert_kms_error(
        "KMSInvalidStateException",
        kms.encrypt,
        KeyId=key["KeyId"],
        Plaintext=b"x",
        message=f"{key['Arn']} is pending import.",
    )
    listed = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert listed["Rotations"] == [] and listed["Truncated"] is False


def test_imported_symmetric_material_encrypts_and_is_the_callers(kms: Any) -> None:
    key = _external(kms)
    material = os.urandom(32)
    out = import_material(kms, key["KeyId"], material)
    assert out["KeyId"] == key["Arn"] and MATERIAL_ID.fullmatch(out["KeyMaterialId"])
    meta = _describe(kms, key)
    assert meta["KeyState"] == "Enabled" and meta["Enabled"] is True
    assert meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE" and "ValidTo" not in meta
    assert meta["CurrentKeyMaterialId"] == out["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    # The server used the caller's material: the caller opens the blob without the server.
    assert open_blob(material, blob) == b"mine"
    opened = kms.decrypt(CiphertextBlob=blob)
    assert opened["Plaintext"] == b"mine" and opened["KeyMaterialId"] == out["KeyMaterialId"]
    rotations = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    (entry,) = rotations["Rotations"]
    assert entry == {
        "KeyId": key["KeyId"],
        "KeyMaterialId": out["KeyMaterialId"],
        "KeyMaterialState": "CURRENT",
        "ImportState": "IMPORTED",
        "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }


def test_the_same_material_has_another_id_in_another_key(kms: Any) -> None:
    material = os.urandom(32)
    first, second = _external(kms), _external(kms)
    one = import_material(kms, first["KeyId"], material)["KeyMaterialId"]
    two = import_material(kms, second["KeyId"], material)["KeyMaterialId"]
    assert one != two
    # Ciphertext is bound to its KMS key, not only to the material (importing-keys.md).
    blob = kms.encrypt(KeyId=first["KeyId"], Plaintext=b"bound")["CiphertextBlob"]
    assert_kms_error(
        "IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, KeyId=second["KeyId"]
    )


def test_material_that_expires_shows_its_valid_to(kms: Any) -> None:
    key = _external(kms)
    valid_to = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    import_material(
        kms, key["KeyId"], os.urandom(32), ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to
    )
    meta = _describe(kms, key)
    assert meta["ExpirationModel"] == "KEY_MATERIAL_EXPIRES" and meta["ValidTo"] == valid_to
    # ExpirationModel defaults to KEY_MATERIAL_EXPIRES (ImportKeyMaterialRequest doc).
    other = _external(kms)
    import_material(kms, other["KeyId"], os.urandom(32), ValidTo=valid_to)
    assert _describe(kms, other)["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"


@pytest.mark.parametrize("algorithm", WRAPPING_ALGORITHMS)
def test_every_wrapping_algorithm_and_key_spec_imports_symmetric_material(
    kms: Any, server: Any, algorithm: str
) -> None:
    key = _external(kms)
    material = os.urandom(32)
    ids = set()
    # Making RSA wrapping keys is slow and no matter of the database: all sizes on one backend.
    for spec in WRAPPING_KEY_SPECS if server.database_url is None else WRAPPING_KEY_SPECS[:1]:
        params = kms.get_parameters_for_import(
            KeyId=key["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec=spec
        )
        assert params["KeyId"] == key["Arn"]
        public = serialization.load_der_public_key(params["PublicKey"])
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.key_size == int(spec.split("_")[1])
        valid_for = params["ParametersValidTo"] - datetime.now(UTC)
        assert timedelta(hours=23, minutes=59) < valid_for <= timedelta(hours=24)
        out = kms.import_key_material(
            KeyId=key["KeyId"],
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material),
            **NO_EXPIRY,
        )
        ids.add(out["KeyMaterialId"])
    assert len(ids) == 1  # re-importing the same material names the same material
    assert _describe(kms, key)["KeyState"] == "Enabled"


@pytest.mark.parametrize("algorithm", WRAPPING_ALGORITHMS)
def test_material_wrapped_with_openssl_imports(kms: Any, algorithm: str, tmp_path: Path) -> None:
    key = _external(kms)
    material = os.urandom(32)
    params = kms.get_parameters_for_import(
        KeyId=key["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_3072"
    )
    kms.import_key_material(
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=openssl_wrap(tmp_path, params["PublicKey"], algorithm, material),
        **NO_EXPIRY,
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"openssl")["CiphertextBlob"]
    assert open_blob(material, blob) == b"openssl"


# -- HMAC and asymmetric keys ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "algorithm", "sizes", "bad"),
    [
        ("HMAC_224", "HMAC_SHA_224", (28, 64), (27, 65)),
        ("HMAC_256", "HMAC_SHA_256", (32, 64), (31, 65)),
        ("HMAC_384", "HMAC_SHA_384", (48, 128), (47, 129)),
        ("HMAC_512", "HMAC_SHA_512", (64, 128), (63, 129)),
    ],
)
def test_hmac_material_of_every_allowed_length_imports(
    kms: Any, spec: str, algorithm: str, sizes: tuple[int, int], bad: tuple[int, int]
) -> None:
    digest = getattr(hashlib, "sha" + spec.split("_")[1])
    for size in sizes:
        key = _external(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
        material = os.urandom(size)
        out = import_material(kms, key["KeyId"], material, algorithm="RSA_AES_KEY_WRAP_SHA_256")
        assert "KeyMaterialId" not in out  # shown for symmetric encryption keys only
        meta = _describe(kms, key)
        assert meta["KeyState"] == "Enabled" and "CurrentKeyMaterialId" not in meta
        mac = kms.generate_mac(KeyId=key["KeyId"], Message=b"m", MacAlgorithm=algorithm)["Mac"]
        assert mac == hmac.new(material, b"m", digest).digest()
    for size in bad:
        key = _external(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
        assert_kms_error(
            "IncorrectKeyMaterialException",
            functools.partial(import_material, kms, key["KeyId"], os.urandom(size)),
        )
        assert _describe(kms, key)["KeyState"] == "PendingImport"


@pytest.mark.parametrize(
    ("spec", "make", "algorithm", "wrapping"),
    [
        (
            "RSA_2048",
            lambda: rsa.generate_private_key(65537, 2048),
            "RSA_AES_KEY_WRAP_SHA_256",
            "RSA_2048",
        ),
        (
            "RSA_4096",
            lambda: rsa.generate_private_key(65537, 4096),
            "RSA_AES_KEY_WRAP_SHA_1",
            "RSA_3072",
        ),
        (
            "ECC_NIST_P256",
            lambda: ec.generate_private_key(ec.SECP256R1()),
            "RSAES_OAEP_SHA_256",
            "RSA_2048",
        ),
        (
            "ECC_NIST_P384",
            lambda: ec.generate_private_key(ec.SECP384R1()),
            "RSAES_OAEP_SHA_1",
            "RSA_2048",
        ),
        (
            "ECC_NIST_P521",
            lambda: ec.generate_private_key(ec.SECP521R1()),
            "RSAES_OAEP_SHA_256",
            "RSA_3072",
        ),
        (
            "ECC_NIST_P521",
            lambda: ec.generate_private_key(ec.SECP521R1()),
            "RSA_AES_KEY_WRAP_SHA_256",
            "RSA_2048",
        ),
        (
            "ECC_SECG_P256K1",
            lambda: ec.generate_private_key(ec.SECP256K1()),
            "RSA_AES_KEY_WRAP_SHA_256",
            "RSA_4096",
        ),
        (
            "ECC_NIST_EDWARDS25519",
            ed25519.Ed25519PrivateKey.generate,
            "RSAES_OAEP_SHA_256",
            "RSA_2048",
        ),
    ],
    ids=["rsa2048", "rsa4096", "p256", "p384", "p521-oaep", "p521-aes", "k1", "ed25519"],
)
def test_signing_key_pair_imports_and_signs_with_the_callers_private_key(
    kms: Any, spec: str, make: Any, algorithm: str, wrapping: str
) -> None:
    private = make()
    key = _external(kms, KeySpec=spec, KeyUsage="SIGN_VERIFY")
    out = import_material(
        kms, key["KeyId"], _pkcs8(private), algorithm=algorithm, wrapping_spec=wrapping
    )
    assert out["KeyId"] == key["Arn"] and "KeyMaterialId" not in out
    meta = _describe(kms, key)
    assert (
        meta["KeyState"] == "Enabled" and meta["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    )
    assert kms.get_public_key(KeyId=key["KeyId"])["PublicKey"] == _spki(private)
    signing = meta["SigningAlgorithms"][0]
    signature = kms.sign(KeyId=key["KeyId"], Message=b"signed", SigningAlgorithm=signing)[
        "Signature"
    ]
    public = private.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, b"signed", padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public, ec.EllipticCurvePublicKey):
        h = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[public.key_size]
        public.verify(signature, b"signed", ec.ECDSA(h))
    else:
        public.verify(signature, b"signed")


def test_rsa_key_pair_wrapped_with_openssl_imports_for_encryption(kms: Any, tmp_path: Path) -> None:
    # As the Developer Guide generates test material: openssl genpkey | openssl pkcs8 -topk8.
    pem = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        check=True,
        capture_output=True,
    ).stdout
    der = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-outform", "DER", "-nocrypt"],
        input=pem,
        check=True,
        capture_output=True,
    ).stdout
    key = _external(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    params = kms.get_parameters_for_import(
        KeyId=key["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec="RSA_4096"
    )
    kms.import_key_material(
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=openssl_wrap(
            tmp_path, params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", der
        ),
        **NO_EXPIRY,
    )
    private = serialization.load_der_private_key(der, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    ciphertext = kms.encrypt(
        KeyId=key["KeyId"], Plaintext=b"to the owner", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )["CiphertextBlob"]
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    assert private.decrypt(ciphertext, oaep) == b"to the owner"


def test_asymmetric_material_must_be_a_private_key_of_the_spec(kms: Any) -> None:
    key = _external(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    wrong_curve = _pkcs8(ec.generate_private_key(ec.SECP384R1()))
    for material in (wrong_curve, os.urandom(64), b"not a key"):
        assert_kms_error(
            "IncorrectKeyMaterialException",
            functools.partial(import_material, kms, key["KeyId"], material),
            algorithm="RSA_AES_KEY_WRAP_SHA_256",
        )
    assert _describe(kms, key)["KeyState"] == "PendingImport"


def test_asymmetric_key_takes_one_material_and_no_symmetric_only_members(kms: Any) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = _external(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    for member in (
        {"ImportType": "NEW_KEY_MATERIAL"},
        {"KeyMaterialDescription": "mine"},
        {"KeyMaterialId": "a" * 64},
    ):
        assert_kms_error(
            "ValidationException",
            functools.partial(import_material, kms, key["KeyId"], _pkcs8(private)),
            **NO_EXPIRY,
            **member,
        )
    import_material(kms, key["KeyId"], _pkcs8(private))
    # Re-importing the same key pair works; another one is not this key's material.
    import_material(kms, key["KeyId"], _pkcs8(private))
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(
            import_material, kms, key["KeyId"], _pkcs8(ec.generate_private_key(ec.SECP256R1()))
        ),
    )
    assert_kms_error("UnsupportedOperationException", kms.list_key_rotations, KeyId=key["KeyId"])


# -- refused combinations and parameters -------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "usage", "algorithm", "wrapping", "error"),
    [
        ("RSA_2048", "SIGN_VERIFY", "RSAES_OAEP_SHA_256", "RSA_4096", "ValidationException"),
        ("RSA_3072", "ENCRYPT_DECRYPT", "RSAES_OAEP_SHA_1", "RSA_4096", "ValidationException"),
        ("ECC_NIST_P521", "SIGN_VERIFY", "RSAES_OAEP_SHA_256", "RSA_2048", "ValidationException"),
        ("ECC_NIST_P521", "SIGN_VERIFY", "RSAES_OAEP_SHA_1", "RSA_2048", "ValidationException"),
        (
            "SYMMETRIC_DEFAULT",
            "ENCRYPT_DECRYPT",
            "RSAES_PKCS1_V1_5",
            "RSA_2048",
            "UnsupportedOperationException",
        ),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "SM2PKE", "SM2", "UnsupportedOperationException"),
        (
            "SYMMETRIC_DEFAULT",
            "ENCRYPT_DECRYPT",
            "RSAES_OAEP_SHA_256",
            "SM2",
            "UnsupportedOperationException",
        ),
    ],
)
def test_wrapping_combinations_aws_refuses_are_refused(
    kms: Any, spec: str, usage: str, algorithm: str, wrapping: str, error: str
) -> None:
    key = _external(kms, KeySpec=spec, KeyUsage=usage)
    assert_kms_error(
        error,
        kms.get_parameters_for_import,
        KeyId=key["KeyId"],
        WrappingAlgorithm=algorithm,
        WrappingKeySpec=wrapping,
    )
    assert _describe(kms, key)["KeyState"] == "PendingImport"


def test_import_operations_refuse_keys_with_kms_generated_material(
    kms: Any, key: dict[str, Any]
) -> None:
    message = f"{key['Arn']} origin is AWS_KMS which is not valid for this operation."
    assert_kms_error(
        "UnsupportedOperationException",
        kms.get_parameters_for_import,
        KeyId=key["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
        message=message,
    )
    assert_kms_error(
        "UnsupportedOperationException",
        kms.import_key_material,
        KeyId=key["KeyId"],
        ImportToken=b"t" * 41,
        EncryptedKeyMaterial=b"m" * 256,
        message=message,
        **NO_EXPIRY,
    )
    assert_kms_error(
        "UnsupportedOperationException",
        kms.delete_imported_key_material,
        KeyId=key["KeyId"],
        message=message,
    )
    assert _describe(kms, key)["KeyState"] == "Enabled"


def test_import_parameters_refuse_a_key_pending_deletion(kms: Any) -> None:
    key = _external(kms)
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        "KMSInvalidStateException",
        kms.get_parameters_for_import,
        KeyId=key["KeyId"],
        WrappingAlgorithm="RSAES_OAEP_SHA_256",
        WrappingKeySpec="RSA_2048",
        message=f"{key['Arn']} is pending deletion.",
    )
    assert _describe(kms, key)["KeyState"] == "PendingDeletion"


def _params(kms: Any, key: dict[str, Any], algorithm: str = "RSAES_OAEP_SHA_256") -> Any:
    return kms.get_parameters_for_import(
        KeyId=key["KeyId"], WrappingAlgorithm=algorithm, WrappingKeySpec="RSA_2048"
    )


def test_tokens_work_only_for_their_key_and_must_be_real(kms: Any) -> None:
    key, other = _external(kms), _external(kms)
    params = _params(kms, other)
    material = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    # ... a token of this server's shape (version byte 1, 41 bytes) whose expiry no date
    # holds: an internal error once, for one random token in 256.
    far = b"\x01" + os.urandom(32) + b"\xff" * 8
    for token in (params["ImportToken"], os.urandom(41), b"x", far):
        assert_kms_error(
            "InvalidImportTokenException",
            kms.import_key_material,
            KeyId=key["KeyId"],
            ImportToken=token,
            EncryptedKeyMaterial=material,
            **NO_EXPIRY,
        )
    assert _describe(kms, key)["KeyState"] == "PendingImport"
    kms.import_key_material(
        KeyId=other["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=material,
        **NO_EXPIRY,
    )
    assert _describe(kms, other)["KeyState"] == "Enabled"


def test_material_that_does_not_unwrap_is_an_invalid_ciphertext(kms: Any, server: Any) -> None:
    key = _external(kms)
    params = _params(kms, key, "RSA_AES_KEY_WRAP_SHA_256")
    good = wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_256", os.urandom(32))
    flipped = good[:-1] + bytes((good[-1] ^ 1,))
    sha1 = wrap(params["PublicKey"], "RSA_AES_KEY_WRAP_SHA_1", os.urandom(32))
    oaep_only = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    before = stored_versions(database_url(server), key["Arn"])
    for encrypted in (os.urandom(300), good[:256], flipped, sha1, oaep_only):
        assert_kms_error(
            "InvalidCiphertextException",
            kms.import_key_material,
            KeyId=key["KeyId"],
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=encrypted,
            **NO_EXPIRY,
        )
    assert _describe(kms, key)["KeyState"] == "PendingImport"
    assert stored_versions(database_url(server), key["Arn"]) == before == []
    assert stored_materials(database_url(server), key["Arn"]) == []


def test_symmetric_material_must_be_32_bytes(kms: Any) -> None:
    key = _external(kms)
    for size in (16, 31, 33, 64):
        assert_kms_error(
            "IncorrectKeyMaterialException",
            functools.partial(import_material, kms, key["KeyId"], os.urandom(size)),
        )
    assert _describe(kms, key)["KeyState"] == "PendingImport"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({}, "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"),
        (
            {"ExpirationModel": "KEY_MATERIAL_EXPIRES"},
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
        ),
        (
            {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE", "ValidTo": "+1"},
            "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE",
        ),
        ({"ValidTo": "-1"}, "The validTo date must be in the future."),
        (
            {"ValidTo": "+366"},
            "The validTo date must be no more than 365 days from the current date.",
        ),
        (
            {"ImportType": "NEW_KEY_MATERIAL", "KeyMaterialId": "a" * 64, **NO_EXPIRY},
            "You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL.",
        ),
    ],
    ids=["no model", "no valid-to", "valid-to not allowed", "past", "too far", "id with new"],
)
def test_expiry_and_import_type_rules(kms: Any, members: dict[str, Any], message: str) -> None:
    key = _external(kms)
    params = _params(kms, key)
    if "ValidTo" in members:
        days = int(members["ValidTo"])
        members = {**members, "ValidTo": datetime.now(UTC) + timedelta(days=days)}
    assert_kms_error(
        "ValidationException",
        kms.import_key_material,
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        message=message,
        **members,
    )
    assert _describe(kms, key)["KeyState"] == "PendingImport"


def test_reimport_must_be_the_same_material(kms: Any) -> None:
    key = _external(kms)
    material = os.urandom(32)
    first = import_material(kms, key["KeyId"], material)["KeyMaterialId"]
    # After the first import ImportType defaults to EXISTING_KEY_MATERIAL.
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(import_material, kms, key["KeyId"], os.urandom(32)),
    )
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(import_material, kms, key["KeyId"], material),
        ImportType="NEW_KEY_MATERIAL",
        **NO_EXPIRY,
    )
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(import_material, kms, key["KeyId"], material),
        KeyMaterialId="b" * 64,
        **NO_EXPIRY,
    )
    again = import_material(
        kms,
        key["KeyId"],
        material,
        ImportType="EXISTING_KEY_MATERIAL",
        KeyMaterialId=first,
        KeyMaterialDescription="the same again",
        **NO_EXPIRY,
    )
    assert again["KeyMaterialId"] == first
    meta = _describe(kms, key)
    assert meta["KeyState"] == "Enabled" and meta["CurrentKeyMaterialId"] == first
    (entry,) = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")[
        "Rotations"
    ]
    assert entry["KeyMaterialDescription"] == "the same again"


# -- deletion: cryptographic erasure ----------------------------------------------------


def _checkpointed_sqlite(server: Any) -> bytes:
    """The SQLite database file once its WAL is checkpointed into it and truncated."""
    path = server.data_dir / "strongroom.db"
    with sqlite3.connect(path) as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "the WAL could not be checkpointed"
    wal = path.with_name("strongroom.db-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_deleting_imported_material_erases_it_until_it_is_imported_again(
    kms: Any, server: Any
) -> None:
    url = database_url(server)
    key = _external(kms)
    material = os.urandom(32)
    material_id = import_material(kms, key["KeyId"], material)["KeyMaterialId"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"erase me")["CiphertextBlob"]
    ((version, wrapped),) = stored_materials(url, key["Arn"])
    if server.database_url is None:
        assert wrapped in _checkpointed_sqlite(server)  # the search below can find it

    out = kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert out["KeyId"] == key["Arn"] and out["KeyMaterialId"] == material_id
    meta = _describe(kms, key)
    assert meta["KeyState"] == "PendingImport" and meta["Enabled"] is False
    assert "ExpirationModel" not in meta and "ValidTo" not in meta
    assert meta["CurrentKeyMaterialId"] == material_id
    assert_kms_error(
        "KMSInvalidStateException",
        kms.decrypt,
        CiphertextBlob=blob,
        message=f"{key['Arn']} is pending import.",
    )
    # No wrapped copy of the material is left in the database.
    assert stored_materials(url, key["Arn"]) == []
    assert wrapped not in all_wrapped_materials(url)
    assert stored_versions(url, key["Arn"]) == [(version, "CURRENT", "PENDING_IMPORT")]
    if server.database_url is None:
        assert wrapped not in _checkpointed_sqlite(server)
    (entry,) = kms.list_key_rotations(KeyId=key["KeyId"], IncludeKeyMaterial="ALL_KEY_MATERIAL")[
        "Rotations"
    ]
    assert entry["ImportState"] == "PENDING_IMPORT" and entry["KeyMaterialId"] == material_id

    # Deleting again has no effect on a key pending import.
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert _describe(kms, key)["KeyState"] == "PendingImport"

    # Only the owner's copy brings it back: then the old ciphertext decrypts again.
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(import_material, kms, key["KeyId"], os.urandom(32)),
    )
    assert import_material(kms, key["KeyId"], material)["KeyMaterialId"] == material_id
    assert _describe(kms, key)["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"erase me"
    assert [v for v, _ in stored_materials(url, key["Arn"])] == [version]


def test_deleting_material_of_a_disabled_or_doomed_key(kms: Any) -> None:
    disabled = _external(kms)
    import_material(kms, disabled["KeyId"], os.urandom(32))
    kms.disable_key(KeyId=disabled["KeyId"])
    kms.delete_imported_key_material(KeyId=disabled["KeyId"])
    assert _describe(kms, disabled)["KeyState"] == "PendingImport"

    doomed = _external(kms)
    import_material(kms, doomed["KeyId"], os.urandom(32))
    kms.schedule_key_deletion(KeyId=doomed["KeyId"], PendingWindowInDays=7)
    kms.delete_imported_key_material(KeyId=doomed["KeyId"])
    # "When the specified KMS key is in the PendingDeletion state, this operation does not
    # change the KMS key's state" (DeleteImportedKeyMaterial doc).
    assert _describe(kms, doomed)["KeyState"] == "PendingDeletion"
    assert_kms_error(
        "KMSInvalidStateException",
        functools.partial(import_material, kms, doomed["KeyId"], os.urandom(32)),
    )


def test_deleting_unknown_material_is_not_found(kms: Any) -> None:
    key = _external(kms)
    import_material(kms, key["KeyId"], os.urandom(32))
    assert_kms_error(
        "NotFoundException",
        kms.delete_imported_key_material,
        KeyId=key["KeyId"],
        KeyMaterialId="c" * 64,
    )
    assert _describe(kms, key)["KeyState"] == "Enabled"


def test_deleted_asymmetric_material_comes_back_only_as_the_same_key_pair(kms: Any) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = _external(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    import_material(kms, key["KeyId"], _pkcs8(private))
    kms.delete_imported_key_material(KeyId=key["KeyId"])
    assert _describe(kms, key)["KeyState"] == "PendingImport"
    assert_kms_error(
        "KMSInvalidStateException",
        kms.sign,
        KeyId=key["KeyId"],
        Message=b"m",
        SigningAlgorithm="ECDSA_SHA_256",
        message=f"{key['Arn']} is pending import.",
    )
    assert_kms_error(
        "IncorrectKeyMaterialException",
        functools.partial(
            import_material, kms, key["KeyId"], _pkcs8(ec.generate_private_key(ec.SECP256R1()))
        ),
    )
    import_material(kms, key["KeyId"], _pkcs8(private))
    assert kms.get_public_key(KeyId=key["KeyId"])["PublicKey"] == _spki(private)


def test_audit_events_hold_neither_wrapped_material_nor_import_token(kms: Any, server: Any) -> None:
    key = _external(kms)
    params = _params(kms, key)
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    kms.import_key_material(
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=encrypted,
        **NO_EXPIRY,
    )
    out = run_strongroom(
        ["audit", "events", *server.storage_args(), "--key", key["Arn"], "--limit", "100"]
    ).stdout
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    names = {e["eventName"] for e in events}
    assert {"GetParametersForImport", "ImportKeyMaterial"} <= names
    imported = next(e for e in events if e["eventName"] == "ImportKeyMaterial")
    assert imported["requestParameters"] == {
        "keyId": key["KeyId"],
        "expirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }
    for secret in (encrypted, params["ImportToken"], params["PublicKey"]):
        for form in (base64.b64encode(secret).decode(), secret.hex()):
            assert form not in out


# -- expiry and import tokens over time (a clock the test moves) --------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcess]:
    with fresh_database(request.param) as url, in_process(tmp_path / "data", url) as running:
        yield running


def test_expired_material_is_erased_by_the_job_and_comes_back_when_reimported(
    app: InProcess,
) -> None:
    kms = app.kms
    key = _external(kms)
    material = os.urandom(32)
    valid_to = app.clock() + timedelta(days=2)
    import_material(
        kms, key["KeyId"], material, ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to
    )
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"until then")["CiphertextBlob"]
    assert len(stored_materials(app.database_url, key["Arn"])) == 1

    app.clock.advance(timedelta(days=1))
    settle()
    assert _describe(kms, key)["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"until then"

    app.clock.advance(timedelta(days=1, seconds=1))
    eventually(lambda: _assert_state(kms, key, "PendingImport"))
    meta = _describe(kms, key)
    assert "ValidTo" not in meta and "ExpirationModel" not in meta
    assert stored_materials(app.database_url, key["Arn"]) == []
    assert_kms_error(
        "KMSInvalidStateException",
        kms.decrypt,
        CiphertextBlob=blob,
        message=f"{key['Arn']} is pending import.",
    )
    import_material(kms, key["KeyId"], material)
    assert _describe(kms, key)["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"until then"
    app.clock.advance(timedelta(days=400))
    settle()
    assert _describe(kms, key)["KeyState"] == "Enabled"  # now it does not expire


def test_an_expiry_is_in_the_trail_as_aws_records_it(app: InProcess) -> None:
    """ct-deleteexpiredkeymaterial: an AwsServiceEvent whose serviceEventDetails name the
    key and the erased material; its intent comes first."""
    kms = app.kms
    key = _external(kms)
    valid_to = app.clock() + timedelta(days=1)
    import_material(
        kms, key["KeyId"], os.urandom(32), ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to
    )
    material_id = _describe(kms, key)["CurrentKeyMaterialId"]
    app.clock.advance(timedelta(days=1, seconds=1))
    eventually(lambda: _assert_state(kms, key, "PendingImport"))
    event = eventually(lambda: service_change(app, "DeleteExpiredKeyMaterial", key["Arn"]))
    assert event["responseElements"] is None
    assert event["serviceEventDetails"] == {"keyId": key["KeyId"], "keyMaterialId": material_id}


def _assert_state(kms: Any, key: dict[str, Any], state: str) -> None:
    assert _describe(kms, key)["KeyState"] == state


def test_import_token_expires_after_24_hours(app: InProcess) -> None:
    kms = app.kms
    key = _external(kms)
    params = _params(kms, key)
    expected = app.clock() + timedelta(hours=24)
    assert abs((params["ParametersValidTo"] - expected).total_seconds()) < 1
    encrypted = wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32))
    app.clock.advance(timedelta(hours=24, seconds=1))
    for _ in range(2):  # before and after the job prunes the expired parameters
        assert_kms_error(
            "ExpiredImportTokenException",
            kms.import_key_material,
            KeyId=key["KeyId"],
            ImportToken=params["ImportToken"],
            EncryptedKeyMaterial=encrypted,
            **NO_EXPIRY,
        )
        settle()
    assert _describe(kms, key)["KeyState"] == "PendingImport"


def test_valid_to_is_checked_against_the_servers_clock(app: InProcess) -> None:
    kms = app.kms
    key = _external(kms)
    app.clock.advance(timedelta(days=100))
    params = _params(kms, key)
    assert_kms_error(
        "ValidationException",
        kms.import_key_material,
        KeyId=key["KeyId"],
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], "RSAES_OAEP_SHA_256", os.urandom(32)),
        ValidTo=datetime.now(UTC) + timedelta(days=30),
        message="The validTo date must be in the future.",
    )


# -- erasure reaches every node's cache ---------------------------------------------------


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two servers on one PostgreSQL database, sharing the root key and the admin."""
    with fresh_database("postgres") as url:
        first = start_server(tmp_path / "a", url)
        second_dir = tmp_path / "b"
        second_dir.mkdir(mode=0o700)
        for shared in ("root.key", "credentials"):
            shutil.copy2(first.data_dir / shared, second_dir / shared)
            os.chmod(second_dir / shared, 0o600)
        second = start_server(second_dir, url)
        try:
            yield first, second
        finally:
            stop_server(second)
            stop_server(first)


def _eventually_code(call: Any, code: str, seconds: float = 3.0) -> None:
    """``call`` fails with ``code`` within ``seconds`` (other nodes poll for changes)."""

    def check() -> None:
        try:
            call()
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == code, exc.response
            return
        raise AssertionError(f"{call} still succeeds")

    eventually(check, seconds)


def test_deleted_material_leaves_every_nodes_cache(two_nodes: tuple[Any, Any]) -> None:
    a, b = (node.client() for node in two_nodes)
    key = _external(a)
    material = os.urandom(32)
    import_material(a, key["KeyId"], material)
    blob = a.encrypt(KeyId=key["KeyId"], Plaintext=b"everywhere")["CiphertextBlob"]
    eventually(lambda: _assert_plaintext(b, blob, b"everywhere"))  # b caches the material

    a.delete_imported_key_material(KeyId=key["KeyId"])
    _eventually_code(lambda: b.decrypt(CiphertextBlob=blob), "KMSInvalidStateException")
    assert _describe(b, key)["KeyState"] == "PendingImport"

    import_material(b, key["KeyId"], material)
    eventually(lambda: _assert_plaintext(a, blob, b"everywhere"))


def _assert_plaintext(kms: Any, blob: bytes, expected: bytes) -> None:
    try:
        plaintext = kms.decrypt(CiphertextBlob=blob)["Plaintext"]
    except ClientError as exc:
        raise AssertionError(exc.response["Error"]) from None
    assert plaintext == expected
