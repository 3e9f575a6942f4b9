"""Sign and Verify for every signing key spec and algorithm, cross-checked with openssl."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa

from strongroom.crypto.asymmetric import generate_private_key, public_key_der, sign, verify
from strongroom.crypto.specs import (
    SIGNING_MESSAGE_TYPES,
    UNSUPPORTED_KEY_SPECS,
    UNSUPPORTED_SIGNING,
    signing_algorithms,
)
from strongroom.domain.enums import KeySpec, MessageType, SigningAlgorithm
from strongroom.domain.errors import (
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.secrets import KeyBytes

pytestmark = pytest.mark.unit

S = KeySpec
G = SigningAlgorithm
T = MessageType
MESSAGE = b"Strongroom signs this message, 42 bytes!!"

SIGNING_SPECS = [s for s in KeySpec if signing_algorithms(s) and s not in UNSUPPORTED_KEY_SPECS]

# Every (spec, algorithm, message type) this build performs.
CASES = [
    (spec, alg, mt)
    for spec in SIGNING_SPECS
    for alg in signing_algorithms(spec)
    for mt in sorted(SIGNING_MESSAGE_TYPES[alg])
    if (alg, mt) not in UNSUPPORTED_SIGNING
]

_HASH = {"SHA_256": "sha256", "SHA_384": "sha384", "SHA_512": "sha512"}


def _hash_name(algorithm: SigningAlgorithm) -> str:
    return _HASH["_".join(algorithm.value.split("_")[-2:])]


def _input(algorithm: SigningAlgorithm, message_type: MessageType) -> bytes:
    if message_type is T.DIGEST:
        return hashlib.new(_hash_name(algorithm), MESSAGE).digest()
    if message_type is T.EXTERNAL_MU:
        return hashlib.shake_256(MESSAGE).digest(64)  # any 64 bytes stand for a mu
    return MESSAGE


@functools.cache
def _key(spec: KeySpec, n: int = 0) -> KeyBytes:
    """One key per spec (and a second one, n=1) for the whole module: RSA keys are slow."""
    return generate_private_key(spec)


def _id(case: tuple[KeySpec, SigningAlgorithm, MessageType]) -> str:
    return "-".join(c.value for c in case)


def test_every_signing_spec_has_cases() -> None:
    assert {c[0] for c in CASES} == {
        S.RSA_2048,
        S.RSA_3072,
        S.RSA_4096,
        S.ECC_NIST_P256,
        S.ECC_NIST_P384,
        S.ECC_NIST_P521,
        S.ECC_SECG_P256K1,
        S.ECC_NIST_EDWARDS25519,
        S.ML_DSA_44,
        S.ML_DSA_65,
        S.ML_DSA_87,
    }
    assert len(CASES) == 3 * 6 * 2 + 4 * 2 + 1 + 3 + 3  # ML-DSA: RAW and EXTERNAL_MU


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_signature_verifies_and_tampering_fails(
    case: tuple[KeySpec, SigningAlgorithm, MessageType],
) -> None:
    spec, alg, mt = case
    key, message = _key(spec), _input(alg, mt)
    signature = sign(spec, key, message, mt, alg)
    assert verify(spec, key, message, mt, alg, signature)
    assert verify(spec, public_key_der(spec, key), message, mt, alg, signature)
    flipped = bytes([signature[0] ^ 0x01]) + signature[1:]
    assert not verify(spec, key, message, mt, alg, flipped)
    other_message = bytes([message[0] ^ 0x80]) + message[1:]
    assert not verify(spec, key, other_message, mt, alg, signature)
    assert not verify(spec, _key(spec, 1), message, mt, alg, signature)


@pytest.mark.parametrize("case", [c for c in CASES if c[2] is T.RAW], ids=_id)
def test_malformed_signatures_are_false_not_errors(
    case: tuple[KeySpec, SigningAlgorithm, MessageType],
) -> None:
    spec, alg, mt = case
    for junk in (b"", b"\x30\x00", b"\x00" * 7, b"\xff" * 600):
        assert verify(spec, _key(spec), MESSAGE, mt, alg, junk) is False


@pytest.mark.parametrize("case", [c for c in CASES if c[2] is T.DIGEST], ids=_id)
def test_raw_and_digest_signatures_verify_both_ways(
    case: tuple[KeySpec, SigningAlgorithm, MessageType],
) -> None:
    spec, alg, _ = case
    key, digest = _key(spec), _input(alg, T.DIGEST)
    from_raw = sign(spec, key, MESSAGE, T.RAW, alg)
    from_digest = sign(spec, key, digest, T.DIGEST, alg)
    assert verify(spec, key, digest, T.DIGEST, alg, from_raw)
    assert verify(spec, key, MESSAGE, T.RAW, alg, from_digest)
    # A digest signed as RAW is hashed twice and no longer matches.
    assert not verify(spec, key, digest, T.RAW, alg, from_raw)


@pytest.mark.parametrize("spec", [S.ML_DSA_44, S.ML_DSA_65, S.ML_DSA_87])
def test_ml_dsa_signature_is_pure_ml_dsa_with_empty_context(spec: KeySpec) -> None:
    signature = sign(spec, _key(spec), MESSAGE, T.RAW, G.ML_DSA_SHAKE_256)
    public = serialization.load_der_public_key(public_key_der(spec, _key(spec)))
    assert isinstance(
        public, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey
    )
    public.verify(signature, MESSAGE)  # raises InvalidSignature if not
    public.verify(signature, MESSAGE, b"")


# --- parameter mistakes, in AWS's words --------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "alg"),
    [
        (s, a)
        for s in SIGNING_SPECS
        for a in signing_algorithms(s)
        if T.DIGEST in SIGNING_MESSAGE_TYPES[a]
    ],
)
def test_digest_of_wrong_length_is_rejected_with_aws_text(
    spec: KeySpec, alg: SigningAlgorithm
) -> None:
    right = len(hashlib.new(_hash_name(alg)).digest())
    for wrong in (right - 1, right + 1, 0):
        with pytest.raises(ValidationException) as e:
            sign(spec, _key(spec), b"\x01" * wrong, T.DIGEST, alg)
        assert e.value.message == f"Digest is invalid length for algorithm {alg}."
        with pytest.raises(ValidationException):
            verify(spec, _key(spec), b"\x01" * wrong, T.DIGEST, alg, b"sig")


def test_algorithm_of_another_spec_is_invalid_key_usage() -> None:
    with pytest.raises(InvalidKeyUsageException) as e:
        sign(S.ECC_NIST_P256, _key(S.ECC_NIST_P256), MESSAGE, T.RAW, G.ECDSA_SHA_512)
    assert e.value.message == "Algorithm ECDSA_SHA_512 is incompatible with key spec ECC_NIST_P256."
    with pytest.raises(InvalidKeyUsageException):
        verify(S.RSA_2048, _key(S.RSA_2048), MESSAGE, T.RAW, G.ECDSA_SHA_256, b"")


def test_ed25519_takes_raw_only_and_ed25519ph_digest_only() -> None:
    key = _key(S.ECC_NIST_EDWARDS25519)
    with pytest.raises(ValidationException) as e:
        sign(S.ECC_NIST_EDWARDS25519, key, b"\0" * 64, T.DIGEST, G.ED25519_SHA_512)
    assert e.value.message == "Message type DIGEST is incompatible with algorithm ED25519_SHA_512."
    with pytest.raises(ValidationException) as e:
        sign(S.ECC_NIST_EDWARDS25519, key, MESSAGE, T.RAW, G.ED25519_PH_SHA_512)
    assert e.value.message == "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512."
    with pytest.raises(ValidationException) as e:
        sign(S.ECC_NIST_EDWARDS25519, key, b"\0" * 32, T.DIGEST, G.ED25519_PH_SHA_512)
    assert e.value.message == "Digest is invalid length for algorithm ED25519_PH_SHA_512."


def test_ed25519ph_is_refused_as_unsupported() -> None:
    digest = hashlib.sha512(MESSAGE).digest()
    key = _key(S.ECC_NIST_EDWARDS25519)
    with pytest.raises(UnsupportedOperationException, match="ED25519_PH_SHA_512"):
        sign(S.ECC_NIST_EDWARDS25519, key, digest, T.DIGEST, G.ED25519_PH_SHA_512)
    with pytest.raises(UnsupportedOperationException, match="Ed25519ph"):
        verify(S.ECC_NIST_EDWARDS25519, key, digest, T.DIGEST, G.ED25519_PH_SHA_512, b"s")


def _mu(spec: KeySpec, key: KeyBytes, message: bytes) -> bytes:
    """FIPS 204 Algorithm 2/7: mu = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64),
    the message representative of pure ML-DSA with an empty context."""
    public = serialization.load_der_public_key(public_key_der(spec, key))
    tr = hashlib.shake_256(public.public_bytes_raw()).digest(64)  # type: ignore[union-attr]
    return hashlib.shake_256(tr + b"\x00\x00" + message).digest(64)


@pytest.mark.parametrize("spec", [S.ML_DSA_44, S.ML_DSA_65, S.ML_DSA_87])
def test_ml_dsa_external_mu_signature_verifies_as_a_raw_signature(spec: KeySpec) -> None:
    key = _key(spec)
    signature = sign(spec, key, _mu(spec, key, MESSAGE), T.EXTERNAL_MU, G.ML_DSA_SHAKE_256)
    assert verify(spec, key, MESSAGE, T.RAW, G.ML_DSA_SHAKE_256, signature)
    raw = sign(spec, key, MESSAGE, T.RAW, G.ML_DSA_SHAKE_256)
    assert verify(spec, key, _mu(spec, key, MESSAGE), T.EXTERNAL_MU, G.ML_DSA_SHAKE_256, raw)


def test_ml_dsa_external_mu_length_and_message_type_are_checked() -> None:
    key = _key(S.ML_DSA_65)
    with pytest.raises(ValidationException) as e:
        sign(S.ML_DSA_65, key, b"\0" * 63, T.EXTERNAL_MU, G.ML_DSA_SHAKE_256)
    assert e.value.message == "External Mu is invalid length for algorithm ML_DSA_SHAKE_256."
    with pytest.raises(ValidationException) as e:
        sign(S.ML_DSA_65, key, b"\0" * 64, T.DIGEST, G.ML_DSA_SHAKE_256)
    assert e.value.message == "Message type DIGEST is incompatible with key spec ML_DSA_65."


def test_sm2_signing_is_refused_naming_the_spec() -> None:
    with pytest.raises(UnsupportedOperationException, match="KeySpec SM2 "):
        sign(S.SM2, KeyBytes(b""), MESSAGE, T.RAW, G.SM2DSA)


# --- the same signatures, checked by the openssl command line ----------------------------

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, timeout=60)


def _files(tmp_path: Path, spec: KeySpec, message: bytes, signature: bytes) -> tuple[Path, ...]:
    pub, msg, sig = tmp_path / "pub.der", tmp_path / "msg.bin", tmp_path / "sig.bin"
    pub.write_bytes(public_key_der(spec, _key(spec)))
    msg.write_bytes(message)
    sig.write_bytes(signature)
    return pub, msg, sig


_PSS_OPTIONS = ("rsa_padding_mode:pss", "rsa_mgf1_md:{h}", "rsa_pss_saltlen:{n}")


def _openssl_dgst_verify(
    tmp_path: Path, spec: KeySpec, alg: SigningAlgorithm, message: bytes, signature: bytes
) -> subprocess.CompletedProcess[bytes]:
    pub, msg, sig = _files(tmp_path, spec, message, signature)
    h = _hash_name(alg)
    options: list[str] = []
    if alg.value.startswith("RSASSA_PSS"):
        n = str(hashlib.new(h).digest_size)  # salt as long as the digest, strictly
        for o in _PSS_OPTIONS:
            options += ["-sigopt", o.format(h=h, n=n)]
    return _openssl(
        "dgst", f"-{h}", "-verify", pub, "-keyform", "DER", *options, "-signature", sig, msg
    )


OPENSSL_DGST_CASES = [
    c
    for c in CASES
    if c[2] is T.RAW and (c[1].value.startswith("RSASSA") or c[1].value.startswith("ECDSA"))
]


@needs_openssl
@pytest.mark.parametrize("case", OPENSSL_DGST_CASES, ids=_id)
def test_openssl_verifies_rsa_and_ecdsa_signatures(
    case: tuple[KeySpec, SigningAlgorithm, MessageType], tmp_path: Path
) -> None:
    spec, alg, _ = case
    from_raw = sign(spec, _key(spec), MESSAGE, T.RAW, alg)
    from_digest = sign(spec, _key(spec), _input(alg, T.DIGEST), T.DIGEST, alg)
    for signature in (from_raw, from_digest):
        done = _openssl_dgst_verify(tmp_path, spec, alg, MESSAGE, signature)
        assert done.returncode == 0, done.stderr
        assert b"Verified OK" in done.stdout
    tampered = _openssl_dgst_verify(tmp_path, spec, alg, MESSAGE + b"!", from_raw)
    assert tampered.returncode != 0


@needs_openssl
def test_openssl_verifies_ed25519_signatures(tmp_path: Path) -> None:
    spec = S.ECC_NIST_EDWARDS25519
    signature = sign(spec, _key(spec), MESSAGE, T.RAW, G.ED25519_SHA_512)
    for message, ok in ((MESSAGE, True), (MESSAGE + b"!", False)):
        pub, msg, sig = _files(tmp_path, spec, message, signature)
        done = _openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-keyform", "DER", "-rawin",
            "-in", msg, "-sigfile", sig,
        )  # fmt: skip
        assert (done.returncode == 0) is ok, done.stderr
        assert (b"Signature Verified Successfully" in done.stdout) is ok


@needs_openssl
def test_openssl_rejects_pss_salt_other_than_digest_length(tmp_path: Path) -> None:
    # Proves the salt-length check above can fail: a 20-byte salt is not AWS's.
    spec, alg = S.RSA_2048, G.RSASSA_PSS_SHA_256
    pub, msg, sig = _files(tmp_path, spec, MESSAGE, sign(spec, _key(spec), MESSAGE, T.RAW, alg))
    done = _openssl(
        "dgst", "-sha256", "-verify", pub, "-keyform", "DER",
        "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:20",
        "-signature", sig, msg,
    )  # fmt: skip
    assert done.returncode != 0
