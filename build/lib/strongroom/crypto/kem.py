"""ML-KEM (FIPS 203) over bytes: Encapsulate with the public key, Decapsulate with the private.

Decapsulate follows the ``Decapsulate`` doc of the KMS model: a ciphertext whose length does
not fit the key spec is InvalidCiphertextException; any other ciphertext, even one made for
another key or altered, yields a 32-byte pseudo-random secret (FIPS 203 implicit
rejection), so the parties must confirm they hold the same secret before using it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import mlkem

from strongroom.crypto.asymmetric_keys import KeyPair, load_public_key, private_key
from strongroom.crypto.specs import (
    ML_KEM_CIPHERTEXT_BYTES,
    check_encapsulation_algorithm,
    check_key_spec_supported,
)
from strongroom.domain.enums import EncapsulationAlgorithm, KeySpec
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError
from strongroom.domain.secrets import KeyBytes


def _check(spec: KeySpec, algorithm: EncapsulationAlgorithm) -> None:
    check_key_spec_supported(spec)
    check_encapsulation_algorithm(spec, algorithm)


def encapsulate(
    spec: KeySpec,
    key: KeyBytes | KeyPair | bytes,
    algorithm: EncapsulationAlgorithm = EncapsulationAlgorithm.ML_KEM,
) -> tuple[bytes, KeyBytes]:
    """A fresh shared secret and its encapsulation: (SharedSecretCiphertextBlob, SharedSecret).

    ``key`` is the stored private material (or its ``KeyPair``) or a DER
    SubjectPublicKeyInfo. Raises InvalidKeyUsageException for a spec that is not ML-KEM and
    UnsupportedOperationException for ML_KEM_512.
    """
    _check(spec, algorithm)
    public = load_public_key(spec, key)
    if not isinstance(public, mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey):
        raise KeyStoreError(f"key material of a {spec} key is not an ML-KEM key")
    shared_secret, ciphertext = public.encapsulate()
    return ciphertext, KeyBytes(shared_secret)


def decapsulate(
    spec: KeySpec,
    private: KeyBytes | KeyPair,
    ciphertext: bytes,
    algorithm: EncapsulationAlgorithm = EncapsulationAlgorithm.ML_KEM,
) -> KeyBytes:
    """The 32-byte shared secret of ``ciphertext``, as Decapsulate returns it.

    Raises InvalidCiphertextException (no detail) when the length does not fit ``spec``.
    """
    _check(spec, algorithm)
    if len(ciphertext) != ML_KEM_CIPHERTEXT_BYTES[spec]:
        raise InvalidCiphertextException()
    key = private_key(spec, private)
    if not isinstance(key, mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey):
        raise KeyStoreError(f"key material of a {spec} key is not an ML-KEM key")
    try:
        return KeyBytes(key.decapsulate(ciphertext))
    except ValueError:
        raise InvalidCiphertextException() from None
