"""HMAC (GenerateMac / VerifyMac) against RFC 4231, and ML-KEM Encapsulate / Decapsulate."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

from strongroom.crypto.asymmetric import generate_private_key, public_key_der
from strongroom.crypto.hmac import generate_mac, verify_mac
from strongroom.crypto.kem import decapsulate, encapsulate
from strongroom.domain.enums import KeySpec, MacAlgorithm
from strongroom.domain.errors import (
    InvalidCiphertextException,
    InvalidKeyUsageException,
    UnsupportedOperationException,
)
from strongroom.domain.secrets import KeyBytes

pytestmark = pytest.mark.unit

S = KeySpec
M = MacAlgorithm
SPEC_OF = {M.HMAC_SHA_224: S.HMAC_224, M.HMAC_SHA_256: S.HMAC_256, M.HMAC_SHA_384: S.HMAC_384,
           M.HMAC_SHA_512: S.HMAC_512}  # fmt: skip

RFC4231: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "asymmetric" / "hmac_rfc4231.json").read_text()
)["vectors"]
CASES = [(v, M(alg)) for v in RFC4231 for alg in v["mac"]]


def _id(case: tuple[dict[str, Any], MacAlgorithm]) -> str:
    return f"case{case[0]['case']}-{case[1].value}"


def test_vectors_are_all_seven_rfc_4231_cases_for_four_hashes() -> None:
    assert [v["case"] for v in RFC4231] == list(range(1, 8))
    assert len(CASES) == 28


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_generate_mac_matches_rfc_4231(case: tuple[dict[str, Any], MacAlgorithm]) -> None:
    v, algorithm = case
    key, data = KeyBytes(bytes.fromhex(v["key"])), bytes.fromhex(v["data"])
    expected = bytes.fromhex(v["mac"][algorithm.value])
    mac = generate_mac(SPEC_OF[algorithm], key, data, algorithm)
    if v["truncated_to"] is None:
        assert mac == expected
        assert verify_mac(SPEC_OF[algorithm], key, data, algorithm, expected)
    else:
        # KMS returns the whole HMAC; RFC 4231 case 5 lists only its first 128 bits.
        assert mac[: v["truncated_to"]] == expected
        assert not verify_mac(SPEC_OF[algorithm], key, data, algorithm, expected)


@pytest.mark.parametrize("algorithm", list(M))
def test_verify_mac_is_false_for_any_other_mac(algorithm: MacAlgorithm) -> None:
    spec = SPEC_OF[algorithm]
    key = generate_private_key(spec)
    mac = generate_mac(spec, key, b"message", algorithm)
    assert verify_mac(spec, key, b"message", algorithm, mac)
    for wrong in (bytes([mac[0] ^ 1]) + mac[1:], mac[:-1], mac + b"\0", b""):
        assert not verify_mac(spec, key, b"message", algorithm, wrong)
    assert not verify_mac(spec, key, b"messagE", algorithm, mac)
    assert not verify_mac(spec, generate_private_key(spec), b"message", algorithm, mac)


def test_mac_algorithm_of_another_spec_gets_aws_text() -> None:
    key = generate_private_key(S.HMAC_224)
    for call in (
        lambda: generate_mac(S.HMAC_224, key, b"m", M.HMAC_SHA_256),
        lambda: verify_mac(S.HMAC_224, key, b"m", M.HMAC_SHA_256, b"x" * 32),
    ):
        with pytest.raises(InvalidKeyUsageException) as e:
            call()
        assert e.value.message == "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224."


# --- ML-KEM ------------------------------------------------------------------------------

ML_KEM = [(S.ML_KEM_768, 1088), (S.ML_KEM_1024, 1568)]


@functools.cache
def _key(spec: KeySpec) -> KeyBytes:
    return generate_private_key(spec)


@pytest.mark.parametrize(("spec", "ciphertext_bytes"), ML_KEM)
def test_decapsulate_recovers_the_encapsulated_secret(spec: KeySpec, ciphertext_bytes: int) -> None:
    for key in (_key(spec), public_key_der(spec, _key(spec))):
        ciphertext, secret = encapsulate(spec, key)
        assert (len(ciphertext), len(secret)) == (ciphertext_bytes, 32)
        assert decapsulate(spec, _key(spec), ciphertext) == secret
        assert encapsulate(spec, key)[1] != secret


@pytest.mark.parametrize(("spec", "ciphertext_bytes"), ML_KEM)
def test_a_peer_with_only_the_public_key_shares_the_secret(
    spec: KeySpec, ciphertext_bytes: int
) -> None:
    public = serialization.load_der_public_key(public_key_der(spec, _key(spec)))
    assert isinstance(public, mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey)
    secret, ciphertext = public.encapsulate()
    assert decapsulate(spec, _key(spec), ciphertext).value == secret


@pytest.mark.parametrize(("spec", "ciphertext_bytes"), ML_KEM)
def test_ciphertext_of_the_wrong_length_is_invalid_ciphertext(
    spec: KeySpec, ciphertext_bytes: int
) -> None:
    for length in (0, ciphertext_bytes - 1, ciphertext_bytes + 1, 768):
        with pytest.raises(InvalidCiphertextException) as e:
            decapsulate(spec, _key(spec), b"\x01" * length)
        assert e.value.message == ""


@pytest.mark.parametrize(("spec", "ciphertext_bytes"), ML_KEM)
def test_altered_ciphertext_yields_another_secret_not_an_error(
    spec: KeySpec, ciphertext_bytes: int
) -> None:
    # FIPS 203 implicit rejection, as the Decapsulate doc describes.
    ciphertext, secret = encapsulate(spec, _key(spec))
    altered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    other = decapsulate(spec, _key(spec), altered)
    assert len(other) == 32
    assert other != secret


def test_ml_kem_512_is_refused_naming_the_spec() -> None:
    with pytest.raises(UnsupportedOperationException, match="KeySpec ML_KEM_512 "):
        encapsulate(S.ML_KEM_512, b"")
    with pytest.raises(UnsupportedOperationException, match="KeySpec ML_KEM_512 "):
        decapsulate(S.ML_KEM_512, KeyBytes(b""), b"\0" * 768)


def test_encapsulation_with_a_key_that_is_not_ml_kem_is_invalid_key_usage() -> None:
    key = generate_private_key(S.ML_DSA_44)
    with pytest.raises(InvalidKeyUsageException) as e:
        encapsulate(S.ML_DSA_44, key)
    assert e.value.message == "Algorithm ML_KEM is incompatible with key spec ML_DSA_44."
