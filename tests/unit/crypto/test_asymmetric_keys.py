"""Key material, data key pairs, RSA-OAEP Encrypt/Decrypt and ECDH DeriveSharedSecret."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa

from strongroom.crypto.asymmetric import (
    derive_shared_secret,
    generate_data_key_pair,
    generate_private_key,
    public_key_der,
    rsa_decrypt,
    rsa_encrypt,
)
from strongroom.crypto.asymmetric_keys import load_private_key
from strongroom.crypto.specs import (
    RSA_OAEP_MAX_PLAINTEXT,
    SYMMETRIC_KEY_BYTES,
    UNSUPPORTED_KEY_SPECS,
)
from strongroom.domain.enums import DataKeyPairSpec, EncryptionAlgorithm, KeySpec
from strongroom.domain.errors import (
    InvalidCiphertextException,
    InvalidKeyUsageException,
    KeyStoreError,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.secrets import KeyBytes

pytestmark = pytest.mark.unit

S = KeySpec
E = EncryptionAlgorithm
RSA_SPECS = [S.RSA_2048, S.RSA_3072, S.RSA_4096]
ECDH_SPECS = [S.ECC_NIST_P256, S.ECC_NIST_P384, S.ECC_NIST_P521]
OAEP = [E.RSAES_OAEP_SHA_1, E.RSAES_OAEP_SHA_256]
_OAEP_HASH = {E.RSAES_OAEP_SHA_1: hashes.SHA1, E.RSAES_OAEP_SHA_256: hashes.SHA256}


@functools.cache
def _key(spec: KeySpec, n: int = 0) -> KeyBytes:
    return generate_private_key(spec)


def _plain_oaep(algorithm: EncryptionAlgorithm) -> padding.OAEP:
    h = _OAEP_HASH[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


# What a loaded key of each key-pair spec must be (independent of the module's own table).
EXPECTED_TYPES: dict[KeySpec, tuple[type, object]] = {
    S.RSA_2048: (rsa.RSAPrivateKey, 2048),
    S.RSA_3072: (rsa.RSAPrivateKey, 3072),
    S.RSA_4096: (rsa.RSAPrivateKey, 4096),
    S.ECC_NIST_P256: (ec.EllipticCurvePrivateKey, "secp256r1"),
    S.ECC_NIST_P384: (ec.EllipticCurvePrivateKey, "secp384r1"),
    S.ECC_NIST_P521: (ec.EllipticCurvePrivateKey, "secp521r1"),
    S.ECC_SECG_P256K1: (ec.EllipticCurvePrivateKey, "secp256k1"),
    S.ECC_NIST_EDWARDS25519: (ed25519.Ed25519PrivateKey, None),
    S.ML_DSA_44: (mldsa.MLDSA44PrivateKey, None),
    S.ML_DSA_65: (mldsa.MLDSA65PrivateKey, None),
    S.ML_DSA_87: (mldsa.MLDSA87PrivateKey, None),
    S.ML_KEM_768: (mlkem.MLKEM768PrivateKey, None),
    S.ML_KEM_1024: (mlkem.MLKEM1024PrivateKey, None),
}


@pytest.mark.parametrize("spec", list(EXPECTED_TYPES))
def test_private_key_is_pkcs8_der_of_the_spec(spec: KeySpec) -> None:
    loaded = serialization.load_der_private_key(_key(spec).value, password=None)
    cls, detail = EXPECTED_TYPES[spec]
    assert isinstance(loaded, cls)
    if isinstance(loaded, rsa.RSAPrivateKey):
        assert (loaded.key_size, loaded.public_key().public_numbers().e) == (detail, 65537)
    if isinstance(loaded, ec.EllipticCurvePrivateKey):
        assert loaded.curve.name == detail


@pytest.mark.parametrize("spec", list(EXPECTED_TYPES))
def test_public_key_is_the_der_spki_of_the_private_key(spec: KeySpec) -> None:
    der = public_key_der(spec, _key(spec))
    loaded_private = serialization.load_der_private_key(_key(spec).value, password=None)
    expected = loaded_private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert der == expected
    assert (
        serialization.load_der_public_key(der).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == der
    )


@pytest.mark.parametrize("spec", list(SYMMETRIC_KEY_BYTES))
def test_symmetric_and_hmac_material_is_a_fresh_secret_of_the_aws_size(spec: KeySpec) -> None:
    a, b = generate_private_key(spec), generate_private_key(spec)
    assert len(a) == len(b) == {"SYMMETRIC_DEFAULT": 32, "HMAC_224": 28, "HMAC_256": 32,
                                "HMAC_384": 48, "HMAC_512": 64}[spec.value]  # fmt: skip
    assert a != b
    with pytest.raises(UnsupportedOperationException):
        public_key_der(spec, a)


@pytest.mark.parametrize("spec", sorted(UNSUPPORTED_KEY_SPECS))
def test_refused_specs_are_unsupported_naming_the_spec(spec: KeySpec) -> None:
    with pytest.raises(UnsupportedOperationException, match=f"KeySpec {spec} "):
        generate_private_key(spec)


def test_material_of_another_spec_is_an_internal_error() -> None:
    with pytest.raises(KeyStoreError):
        load_private_key(S.ECC_NIST_P384, _key(S.ECC_NIST_P256))
    with pytest.raises(KeyStoreError):
        load_private_key(S.RSA_3072, _key(S.RSA_2048))
    with pytest.raises(KeyStoreError):
        load_private_key(S.ECC_NIST_P256, KeyBytes(b"\x30\x03\x02\x01\x00"))


def test_validating_load_accepts_a_good_rsa_key() -> None:
    assert isinstance(
        load_private_key(S.RSA_2048, _key(S.RSA_2048), validate=True), rsa.RSAPrivateKey
    )


# --- data key pairs ----------------------------------------------------------------------

SUPPORTED_PAIRS = [
    p for p in DataKeyPairSpec if p not in (DataKeyPairSpec.SM2, DataKeyPairSpec.ML_KEM_512)
]


@pytest.mark.parametrize("pair_spec", SUPPORTED_PAIRS)
def test_data_key_pair_private_matches_public(pair_spec: DataKeyPairSpec) -> None:
    private, public = generate_data_key_pair(pair_spec)
    key = serialization.load_der_private_key(private.value, password=None)
    assert isinstance(key, EXPECTED_TYPES[KeySpec(pair_spec.value)][0])
    assert (
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == public
    )
    assert generate_data_key_pair(pair_spec)[1] != public


def test_ml_kem_data_key_pairs_are_in_seed_form_of_one_length() -> None:
    # GenerateDataKeyPair doc: ML-KEM private keys are PKCS#8 in seed format, "As a result,
    # the length of the private key is the same for all ML-KEM key pair specs."
    a, _ = generate_data_key_pair(DataKeyPairSpec.ML_KEM_768)
    b, _ = generate_data_key_pair(DataKeyPairSpec.ML_KEM_1024)
    assert len(a) == len(b) == 86  # 22 bytes of PKCS#8 and OCTET STRING framing + 64-byte seed


@pytest.mark.parametrize("pair_spec", [DataKeyPairSpec.SM2, DataKeyPairSpec.ML_KEM_512])
def test_refused_data_key_pairs_name_the_pair_spec(pair_spec: DataKeyPairSpec) -> None:
    with pytest.raises(UnsupportedOperationException, match=f"KeyPairSpec {pair_spec} "):
        generate_data_key_pair(pair_spec)


# --- RSA-OAEP ----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", OAEP)
@pytest.mark.parametrize("spec", RSA_SPECS)
def test_oaep_ciphertext_from_plain_cryptography_decrypts(
    spec: KeySpec, algorithm: EncryptionAlgorithm
) -> None:
    public = serialization.load_der_public_key(public_key_der(spec, _key(spec)))
    assert isinstance(public, rsa.RSAPublicKey)
    plaintext = bytes(range(256))[: RSA_OAEP_MAX_PLAINTEXT[(spec, algorithm)]]
    ciphertext = public.encrypt(plaintext, _plain_oaep(algorithm))
    assert rsa_decrypt(spec, _key(spec), ciphertext, algorithm) == plaintext


@pytest.mark.parametrize("algorithm", OAEP)
@pytest.mark.parametrize("spec", RSA_SPECS)
def test_oaep_ciphertext_decrypts_with_plain_cryptography(
    spec: KeySpec, algorithm: EncryptionAlgorithm
) -> None:
    for key in (_key(spec), public_key_der(spec, _key(spec))):
        ciphertext = rsa_encrypt(spec, key, b"secret", algorithm)
        assert len(ciphertext) == int(spec.value.removeprefix("RSA_")) // 8
        private = serialization.load_der_private_key(_key(spec).value, password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        assert private.decrypt(ciphertext, _plain_oaep(algorithm)) == b"secret"


@pytest.mark.parametrize("algorithm", OAEP)
@pytest.mark.parametrize("spec", RSA_SPECS)
def test_plaintext_over_the_limit_is_refused_with_aws_text(
    spec: KeySpec, algorithm: EncryptionAlgorithm
) -> None:
    limit = RSA_OAEP_MAX_PLAINTEXT[(spec, algorithm)]
    most = b"\x07" * limit
    assert (
        rsa_decrypt(spec, _key(spec), rsa_encrypt(spec, _key(spec), most, algorithm), algorithm)
        == most
    )
    with pytest.raises(ValidationException) as e:
        rsa_encrypt(spec, _key(spec), b"\x07" * (limit + 1), algorithm)
    assert e.value.message == (
        f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {limit} bytes."
    )


def test_decrypt_failures_are_opaque_invalid_ciphertext() -> None:
    spec, key = S.RSA_2048, _key(S.RSA_2048)
    ciphertext = rsa_encrypt(spec, key, b"secret", E.RSAES_OAEP_SHA_256)
    bad = [
        bytes([ciphertext[0] ^ 1]) + ciphertext[1:],
        ciphertext[:-1],
        ciphertext + b"\0",
        b"",
    ]
    for blob, algorithm, private in [
        *((b, E.RSAES_OAEP_SHA_256, key) for b in bad),
        (ciphertext, E.RSAES_OAEP_SHA_1, key),  # the other algorithm
        (ciphertext, E.RSAES_OAEP_SHA_256, _key(spec, 1)),  # another key
    ]:
        with pytest.raises(InvalidCiphertextException) as e:
            rsa_decrypt(spec, private, blob, algorithm)
        assert e.value.message == ""


def test_encryption_algorithm_of_another_spec_is_invalid_key_usage() -> None:
    with pytest.raises(InvalidKeyUsageException) as e:
        rsa_encrypt(S.RSA_2048, _key(S.RSA_2048), b"x", E.SYMMETRIC_DEFAULT)
    assert e.value.message == "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
    with pytest.raises(InvalidKeyUsageException) as e:
        rsa_decrypt(S.ECC_NIST_P256, _key(S.ECC_NIST_P256), b"x", E.RSAES_OAEP_SHA_256)
    assert e.value.message == (
        "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec ECC_NIST_P256."
    )


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
@pytest.mark.parametrize(
    ("algorithm", "md"), [(E.RSAES_OAEP_SHA_1, "sha1"), (E.RSAES_OAEP_SHA_256, "sha256")]
)
def test_oaep_ciphertext_from_openssl_decrypts(
    algorithm: EncryptionAlgorithm, md: str, tmp_path: Path
) -> None:
    assert OPENSSL is not None
    spec = S.RSA_3072
    (tmp_path / "pub.der").write_bytes(public_key_der(spec, _key(spec)))
    (tmp_path / "msg").write_bytes(b"from openssl")
    done = subprocess.run(
        [OPENSSL, "pkeyutl", "-encrypt", "-pubin", "-inkey", str(tmp_path / "pub.der"),
         "-keyform", "DER", "-in", str(tmp_path / "msg"),
         "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}",
         "-pkeyopt", f"rsa_mgf1_md:{md}"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert rsa_decrypt(spec, _key(spec), done.stdout, algorithm) == b"from openssl"


# --- ECDH --------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "size"), zip(ECDH_SPECS, (32, 48, 66), strict=True))
def test_ecdh_secret_equals_the_one_computed_on_the_other_side(spec: KeySpec, size: int) -> None:
    ours = _key(spec)
    theirs = serialization.load_der_private_key(_key(spec, 1).value, password=None)
    assert isinstance(theirs, ec.EllipticCurvePrivateKey)
    their_public = theirs.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    our_public = serialization.load_der_public_key(public_key_der(spec, ours))
    assert isinstance(our_public, ec.EllipticCurvePublicKey)
    secret = derive_shared_secret(spec, ours, their_public)
    assert secret.value == theirs.exchange(ec.ECDH(), our_public)
    assert len(secret) == size


@pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")
def test_ecdh_secret_equals_openssls(tmp_path: Path) -> None:
    assert OPENSSL is not None
    spec = S.ECC_NIST_P384
    (tmp_path / "peer.der").write_bytes(_key(spec, 1).value)
    (tmp_path / "ours.der").write_bytes(public_key_der(spec, _key(spec)))
    done = subprocess.run(
        [OPENSSL, "pkeyutl", "-derive", "-inkey", str(tmp_path / "peer.der"), "-keyform", "DER",
         "-peerkey", str(tmp_path / "ours.der"), "-peerform", "DER"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    peer_public = public_key_der(spec, _key(spec, 1))
    assert derive_shared_secret(spec, _key(spec), peer_public).value == done.stdout


def test_peer_key_on_another_curve_is_a_validation_error() -> None:
    p384_public = public_key_der(S.ECC_NIST_P384, _key(S.ECC_NIST_P384))
    with pytest.raises(ValidationException) as e:
        derive_shared_secret(S.ECC_NIST_P256, _key(S.ECC_NIST_P256), p384_public)
    assert "secp384r1" in e.value.message and "secp256r1" in e.value.message
    assert "same elliptic curve" in e.value.message


@pytest.mark.parametrize(
    "peer",
    [b"", b"not DER", b"\x30\x03\x02\x01\x00"],
    ids=["empty", "text", "not-spki"],
)
def test_peer_key_that_is_not_spki_is_a_validation_error_without_text(peer: bytes) -> None:
    with pytest.raises(ValidationException) as e:
        derive_shared_secret(S.ECC_NIST_P256, _key(S.ECC_NIST_P256), peer)
    assert e.value.message == ""  # as AWS (LocalStack snapshot "response-invalid-public-key")


def test_peer_key_that_is_not_ec_is_a_validation_error() -> None:
    for other in (S.ECC_NIST_EDWARDS25519, S.RSA_2048):
        with pytest.raises(ValidationException, match="not an elliptic curve public key"):
            derive_shared_secret(
                S.ECC_NIST_P256, _key(S.ECC_NIST_P256), public_key_der(other, _key(other))
            )


@pytest.mark.parametrize("spec", [S.ECC_SECG_P256K1, S.ECC_NIST_EDWARDS25519, S.RSA_2048])
def test_key_agreement_on_a_spec_without_it_is_invalid_key_usage(spec: KeySpec) -> None:
    with pytest.raises(InvalidKeyUsageException) as e:
        derive_shared_secret(spec, _key(spec), public_key_der(spec, _key(spec)))
    assert e.value.message == f"Algorithm ECDH is incompatible with key spec {spec}."
