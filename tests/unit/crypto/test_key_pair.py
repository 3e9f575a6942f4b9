"""A loaded ``KeyPair`` works wherever stored material does, and is checked against its spec."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.crypto.asymmetric import (
    derive_shared_secret,
    generate_private_key,
    load_key_pair,
    public_key_der,
    rsa_decrypt,
    rsa_encrypt,
    sign,
    verify,
)
from strongroom.crypto.kem import decapsulate, encapsulate
from strongroom.domain.enums import EncryptionAlgorithm, KeySpec, MessageType, SigningAlgorithm
from strongroom.domain.errors import KeyStoreError
from strongroom.domain.secrets import KeyBytes

pytestmark = pytest.mark.unit

S = KeySpec
RAW = MessageType.RAW


@functools.cache
def _key(spec: KeySpec) -> KeyBytes:
    return generate_private_key(spec)


@pytest.mark.parametrize(
    ("spec", "algorithm"),
    [
        (S.RSA_2048, SigningAlgorithm.RSASSA_PSS_SHA_256),
        (S.ECC_NIST_P256, SigningAlgorithm.ECDSA_SHA_256),
        (S.ECC_NIST_EDWARDS25519, SigningAlgorithm.ED25519_SHA_512),
        (S.ML_DSA_44, SigningAlgorithm.ML_DSA_SHAKE_256),
    ],
)
def test_signatures_of_a_key_pair_and_of_its_material_verify_either_way(
    spec: KeySpec, algorithm: SigningAlgorithm
) -> None:
    pair = load_key_pair(spec, _key(spec))
    by_pair = sign(spec, pair, b"m", RAW, algorithm)
    by_material = sign(spec, _key(spec), b"m", RAW, algorithm)
    for signature in (by_pair, by_material):
        assert verify(spec, pair, b"m", RAW, algorithm, signature)
        assert verify(spec, _key(spec), b"m", RAW, algorithm, signature)
        assert verify(spec, pair.public_der, b"m", RAW, algorithm, signature)
    assert not verify(spec, pair, b"other", RAW, algorithm, by_pair)


def test_key_pair_holds_the_public_key_der() -> None:
    pair = load_key_pair(S.ECC_NIST_P384, _key(S.ECC_NIST_P384))
    assert pair.public_der == public_key_der(S.ECC_NIST_P384, _key(S.ECC_NIST_P384))
    assert public_key_der(S.ECC_NIST_P384, pair) == pair.public_der


def test_rsa_encryption_ecdh_and_ml_kem_take_a_key_pair() -> None:
    oaep = EncryptionAlgorithm.RSAES_OAEP_SHA_256
    rsa_pair = load_key_pair(S.RSA_2048, _key(S.RSA_2048))
    assert rsa_decrypt(S.RSA_2048, rsa_pair, rsa_encrypt(S.RSA_2048, rsa_pair, b"x", oaep), oaep)
    ec_pair = load_key_pair(S.ECC_NIST_P256, _key(S.ECC_NIST_P256))
    peer = ec.generate_private_key(ec.SECP256R1())
    peer_der = peer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    ours = derive_shared_secret(S.ECC_NIST_P256, ec_pair, peer_der)
    assert ours == derive_shared_secret(S.ECC_NIST_P256, _key(S.ECC_NIST_P256), peer_der)
    kem_pair = load_key_pair(S.ML_KEM_768, _key(S.ML_KEM_768))
    ciphertext, secret = encapsulate(S.ML_KEM_768, kem_pair)
    assert decapsulate(S.ML_KEM_768, kem_pair, ciphertext) == secret


def test_key_pair_of_another_spec_is_an_internal_error() -> None:
    pair = load_key_pair(S.ECC_NIST_P256, _key(S.ECC_NIST_P256))
    with pytest.raises(KeyStoreError):
        sign(S.ECC_SECG_P256K1, pair, b"m", RAW, SigningAlgorithm.ECDSA_SHA_256)
    with pytest.raises(KeyStoreError):
        public_key_der(S.ECC_NIST_P384, pair)


def test_key_pair_repr_shows_no_key() -> None:
    pair = load_key_pair(S.ECC_NIST_P256, _key(S.ECC_NIST_P256))
    assert repr(pair) == "KeyPair(spec=<KeySpec.ECC_NIST_P256: 'ECC_NIST_P256'>)"
