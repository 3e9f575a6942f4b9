"""Bring your own key, as a user does it: wrap key material under the public key that
GetParametersForImport returns (pyca/cryptography, or openssl as the AWS KMS Developer Guide's
"Step 3: Encrypt the key material" shows), then ImportKeyMaterial."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

from strongroom.storage.schema import key_material_versions, key_materials

WRAPPING_ALGORITHMS = (
    "RSAES_OAEP_SHA_1",
    "RSAES_OAEP_SHA_256",
    "RSA_AES_KEY_WRAP_SHA_1",
    "RSA_AES_KEY_WRAP_SHA_256",
)
WRAPPING_KEY_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")
NO_EXPIRY = {"ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}


def _oaep(algorithm: str) -> padding.OAEP:
    h: hashes.HashAlgorithm = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


def wrap(public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """EncryptedKeyMaterial for ``material`` under the wrapping public key: RSAES-OAEP, or for
    RSA_AES_KEY_WRAP_* an ephemeral AES-256 key under RSAES-OAEP followed by the material
    under AES Key Wrap with Padding (RFC 5649)."""
    public = serialization.load_der_public_key(public_key_der)
    assert isinstance(public, rsa.RSAPublicKey)
    if algorithm.startswith("RSAES_OAEP"):
        return public.encrypt(material, _oaep(algorithm))
    aes_key = os.urandom(32)
    return public.encrypt(aes_key, _oaep(algorithm)) + aes_key_wrap_with_padding(aes_key, material)


def openssl_wrap(workdir: Path, public_key_der: bytes, algorithm: str, material: bytes) -> bytes:
    """The same with the openssl commands of the AWS KMS Developer Guide (pkeyutl for
    RSAES-OAEP, enc -id-aes256-wrap-pad for the AES key wrap)."""
    digest = "sha1" if algorithm.endswith("SHA_1") else "sha256"
    (workdir / "public.der").write_bytes(public_key_der)
    (workdir / "material.bin").write_bytes(material)
    oaep = [
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        str(workdir / "public.der"),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        f"rsa_oaep_md:{digest}",
        "-pkeyopt",
        f"rsa_mgf1_md:{digest}",
    ]
    if algorithm.startswith("RSAES_OAEP"):
        subprocess.run(
            [
                "openssl",
                "pkeyutl",
                "-encrypt",
                "-in",
                str(workdir / "material.bin"),
                *oaep,
                "-out",
                str(workdir / "wrapped.bin"),
            ],
            check=True,
            capture_output=True,
        )
        return (workdir / "wrapped.bin").read_bytes()
    subprocess.run(
        ["openssl", "rand", "-out", str(workdir / "aes.bin"), "32"], check=True, capture_output=True
    )
    aes_hex = (workdir / "aes.bin").read_bytes().hex()
    subprocess.run(
        [
            "openssl",
            "enc",
            "-id-aes256-wrap-pad",
            "-K",
            aes_hex,
            "-iv",
            "A65959A6",
            "-in",
            str(workdir / "material.bin"),
            "-out",
            str(workdir / "material.wrapped"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-encrypt",
            "-in",
            str(workdir / "aes.bin"),
            *oaep,
            "-out",
            str(workdir / "aes.wrapped"),
        ],
        check=True,
        capture_output=True,
    )
    return (workdir / "aes.wrapped").read_bytes() + (workdir / "material.wrapped").read_bytes()


def import_material(
    kms: Any,
    key_id: str,
    material: bytes,
    *,
    algorithm: str = "RSAES_OAEP_SHA_256",
    wrapping_spec: str = "RSA_2048",
    **kwargs: Any,
) -> dict[str, Any]:
    """GetParametersForImport, wrap, ImportKeyMaterial (``kwargs``: its other members; no
    expiry unless they say otherwise)."""
    params = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm=algorithm, WrappingKeySpec=wrapping_spec
    )
    members = kwargs or dict(NO_EXPIRY)
    out: dict[str, Any] = kms.import_key_material(
        KeyId=key_id,
        ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wrap(params["PublicKey"], algorithm, material),
        **members,
    )
    return out


def open_blob(material: bytes, blob: bytes) -> bytes:
    """Decrypt a ciphertext blob with no encryption context by its documented layout
    (strongroom/crypto/blob.py), with the key material the caller imported."""
    n = blob[13]
    head_end = 14 + n + 4 + 12
    empty_context = b"\x00\x00\x00\x00"
    return AESGCM(material).decrypt(
        blob[head_end - 12 : head_end], blob[head_end:], blob[:head_end] + empty_context
    )


def stored_materials(database_url: str, key_arn: str) -> list[tuple[int, bytes]]:
    """The wrapped material rows the database holds for a key, read straight from it."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(key_materials.c.version, key_materials.c.wrapped).where(
                    key_materials.c.key_arn == key_arn
                )
            ).all()
    finally:
        engine.dispose()
    return [(r.version, bytes(r.wrapped)) for r in rows]


def all_wrapped_materials(database_url: str) -> list[bytes]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(key_materials.c.wrapped)).scalars().all()
    finally:
        engine.dispose()
    return [bytes(r) for r in rows]


def stored_versions(database_url: str, key_arn: str) -> list[tuple[int, str, str | None]]:
    """(version, state, import state) of each material version of a key, from the database."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    key_material_versions.c.version,
                    key_material_versions.c.state,
                    key_material_versions.c.import_state,
                )
                .where(key_material_versions.c.key_arn == key_arn)
                .order_by(key_material_versions.c.version)
            ).all()
    finally:
        engine.dispose()
    return [(r.version, r.state, r.import_state) for r in rows]


def database_url(server: Any) -> str:
    """The SQLAlchemy URL of a test server's database (its SQLite file by default)."""
    if server.database_url:
        return str(server.database_url)
    return f"sqlite:///{server.data_dir / 'strongroom.db'}"
