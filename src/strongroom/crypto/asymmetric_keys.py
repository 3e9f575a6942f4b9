"""Key material for every key spec: generation, PKCS#8 / SubjectPublicKeyInfo DER, loading.

Formats, as AWS uses them:

* asymmetric private keys are DER PKCS#8 PrivateKeyInfo (RFC 5958), the form
  GenerateDataKeyPair returns; ML-DSA and ML-KEM private keys are in seed form (the
  ``GenerateDataKeyPair`` doc: "the DER-encoded PKCS8 PrivateKeyInfo contains the private
  key in seed format"), which is the only form pyca/cryptography writes;
* public keys are DER SubjectPublicKeyInfo (RFC 5280), the form GetPublicKey returns;
* symmetric and HMAC material is the raw random secret.

Parsing PKCS#8 on every operation is wasted work, so a service may load stored material
once into a ``KeyPair`` (the parsed private key, its public key and the public key's DER)
and keep it; every function here that takes stored material takes a ``KeyPair`` too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from strongroom.crypto.specs import (
    SYMMETRIC_KEY_BYTES,
    check_key_spec_supported,
    data_key_pair_key_spec,
)
from strongroom.domain.enums import DataKeyPairSpec, KeySpec
from strongroom.domain.errors import (
    KeyStoreError,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.secrets import KeyBytes

S = KeySpec
RSA_PUBLIC_EXPONENT = 65537

AnyKey = PrivateKeyTypes | PublicKeyTypes


def _rsa(bits: int) -> tuple[Callable[[], PrivateKeyTypes], Callable[[AnyKey], bool]]:
    def generate() -> PrivateKeyTypes:
        return rsa.generate_private_key(RSA_PUBLIC_EXPONENT, bits)

    def fits(key: AnyKey) -> bool:
        return isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size == bits

    return generate, fits


def _ec(curve: ec.EllipticCurve) -> tuple[Callable[[], PrivateKeyTypes], Callable[[AnyKey], bool]]:
    def generate() -> PrivateKeyTypes:
        return ec.generate_private_key(curve)

    def fits(key: AnyKey) -> bool:
        return (
            isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)
            and key.curve.name == curve.name
        )

    return generate, fits


def _typed(
    generate: Callable[[], PrivateKeyTypes], private: type, public: type
) -> tuple[Callable[[], PrivateKeyTypes], Callable[[AnyKey], bool]]:
    def fits(key: AnyKey) -> bool:
        return isinstance(key, (private, public))

    return generate, fits


_KEY_PAIRS: Mapping[KeySpec, tuple[Callable[[], PrivateKeyTypes], Callable[[AnyKey], bool]]] = {
    S.RSA_2048: _rsa(2048),
    S.RSA_3072: _rsa(3072),
    S.RSA_4096: _rsa(4096),
    S.ECC_NIST_P256: _ec(ec.SECP256R1()),
    S.ECC_NIST_P384: _ec(ec.SECP384R1()),
    S.ECC_NIST_P521: _ec(ec.SECP521R1()),
    S.ECC_SECG_P256K1: _ec(ec.SECP256K1()),
    S.ECC_NIST_EDWARDS25519: _typed(
        ed25519.Ed25519PrivateKey.generate, ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey
    ),
    S.ML_DSA_44: _typed(
        mldsa.MLDSA44PrivateKey.generate, mldsa.MLDSA44PrivateKey, mldsa.MLDSA44PublicKey
    ),
    S.ML_DSA_65: _typed(
        mldsa.MLDSA65PrivateKey.generate, mldsa.MLDSA65PrivateKey, mldsa.MLDSA65PublicKey
    ),
    S.ML_DSA_87: _typed(
        mldsa.MLDSA87PrivateKey.generate, mldsa.MLDSA87PrivateKey, mldsa.MLDSA87PublicKey
    ),
    S.ML_KEM_768: _typed(
        mlkem.MLKEM768PrivateKey.generate, mlkem.MLKEM768PrivateKey, mlkem.MLKEM768PublicKey
    ),
    S.ML_KEM_1024: _typed(
        mlkem.MLKEM1024PrivateKey.generate, mlkem.MLKEM1024PrivateKey, mlkem.MLKEM1024PublicKey
    ),
}
"""For every key-pair spec this build serves: how to make a key, and whether a loaded key
(private or public) is one of the spec's."""


@contextmanager
def _backend_supports(spec: KeySpec) -> Iterator[None]:
    # A cryptography built against an OpenSSL without ML-DSA / ML-KEM says so here.
    try:
        yield
    except UnsupportedAlgorithm:
        raise UnsupportedOperationException(
            f"KeySpec {spec} is not supported by this server's cryptography backend."
        ) from None


def _key_pair(spec: KeySpec) -> tuple[Callable[[], PrivateKeyTypes], Callable[[AnyKey], bool]]:
    check_key_spec_supported(spec)
    pair = _KEY_PAIRS.get(spec)
    if pair is None:
        raise UnsupportedOperationException(f"KeySpec {spec} has no key pair.")
    return pair


def _pkcs8(key: PrivateKeyTypes) -> KeyBytes:
    return KeyBytes(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_private_key(spec: KeySpec) -> KeyBytes:
    """Fresh key material for a KMS key of ``spec``: PKCS#8 DER for key pairs, a random
    secret for SYMMETRIC_DEFAULT (32 bytes) and HMAC (28/32/48/64 bytes).

    Raises UnsupportedOperationException for specs this build refuses.
    """
    size = SYMMETRIC_KEY_BYTES.get(spec)
    if size is not None:
        return KeyBytes(os.urandom(size))
    generate, _ = _key_pair(spec)
    with _backend_supports(spec):
        return _pkcs8(generate())


@dataclass(frozen=True, slots=True)
class KeyPair:
    """Stored material of a key-pair spec, parsed once: what a cache holds so that an
    operation neither parses PKCS#8 nor derives the public key again. Made only by
    ``load_key_pair``; ``repr`` leaves the private key out."""

    spec: KeySpec
    private: PrivateKeyTypes = field(repr=False)
    public: PublicKeyTypes = field(repr=False)
    public_der: bytes = field(repr=False)


def load_key_pair(spec: KeySpec, private: KeyBytes) -> KeyPair:
    """Parse stored PKCS#8 material of ``spec`` once (KeyStoreError as ``load_private_key``)."""
    key = load_private_key(spec, private)
    public = key.public_key()
    return KeyPair(spec, key, public, _spki(public))


def private_key(spec: KeySpec, private: KeyBytes | KeyPair) -> PrivateKeyTypes:
    """The private key of stored material or of a loaded ``KeyPair`` of ``spec``."""
    if isinstance(private, KeyPair):
        if private.spec is not spec:
            raise KeyStoreError(f"a loaded {private.spec} key pair is not a {spec} key pair")
        return private.private
    return load_private_key(spec, private)


def load_private_key(
    spec: KeySpec, private: KeyBytes, *, validate: bool = False
) -> PrivateKeyTypes:
    """The private key in stored PKCS#8 material of ``spec``.

    Stored material is authenticated (AES-GCM under the root key, bound to its key and
    version), so the RSA consistency check, which costs 40 ms for RSA_2048 and 300 ms for
    RSA_4096 on every load, is skipped unless ``validate`` asks for it: do ask, for material
    that comes from outside (imports). Material that does not parse or is not of ``spec``
    means the store is inconsistent: KeyStoreError (an internal error), never a
    caller-facing one.
    """
    _, fits = _key_pair(spec)
    try:
        key = serialization.load_der_private_key(
            private.value, password=None, unsafe_skip_rsa_key_validation=not validate
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyStoreError(f"key material of a {spec} key is not a PKCS#8 private key") from None
    if not fits(key):
        raise KeyStoreError(f"key material of a {spec} key holds another kind of key")
    return key


def load_public_key(spec: KeySpec, key: KeyBytes | KeyPair | bytes) -> PublicKeyTypes:
    """The public key of ``spec`` from stored private material (KeyBytes), a loaded
    ``KeyPair`` or a DER SubjectPublicKeyInfo (bytes). A public key that does not parse or
    is not of ``spec``: ValidationException."""
    if isinstance(key, KeyPair):
        private_key(spec, key)  # the spec check
        return key.public
    if isinstance(key, KeyBytes):
        return load_private_key(spec, key).public_key()
    _, fits = _key_pair(spec)
    try:
        public = serialization.load_der_public_key(key)
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationException(
            "PublicKey is not a DER-encoded X.509 SubjectPublicKeyInfo."
        ) from None
    if not fits(public):
        raise ValidationException(f"PublicKey is not a {spec} public key.")
    return public


def public_key_der(spec: KeySpec, private: KeyBytes | KeyPair) -> bytes:
    """The DER SubjectPublicKeyInfo of a key pair, as GetPublicKey returns it.

    Raises UnsupportedOperationException for symmetric and HMAC specs (no public key).
    """
    if isinstance(private, KeyPair):
        private_key(spec, private)  # the spec check
        return private.public_der
    return _spki(load_private_key(spec, private).public_key())


def generate_data_key_pair(spec: DataKeyPairSpec) -> tuple[KeyBytes, bytes]:
    """A fresh data key pair: (PKCS#8 DER private key, DER SubjectPublicKeyInfo public key).

    Raises UnsupportedOperationException naming ``spec`` for pairs this build cannot make.
    """
    key_spec = data_key_pair_key_spec(spec)
    private = generate_private_key(key_spec)
    return private, public_key_der(key_spec, private)


def pem_private_key_material(spec: KeySpec, pem: bytes) -> KeyBytes:
    """The stored form (PKCS#8 DER) of an unencrypted PEM private key made elsewhere, e.g.
    one a seed file gives. Raises ValidationException when it is encrypted, not a PEM
    private key, or (naming what the key is) not one of ``spec``'s;
    UnsupportedOperationException for specs without key pairs."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ValidationException("the PEM private key is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ValidationException(f"is not a PEM private key (key spec {spec} takes one)") from None
    _, fits = _key_pair(spec)
    if not fits(key):
        raise ValidationException(
            f"the private key is {_describe(key)}, which does not fit key spec {spec}"
        )
    return _pkcs8(key)


def _describe(key: PrivateKeyTypes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"a {key.key_size}-bit RSA key"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC key on curve {key.curve.name}"
    return f"a {type(key).__name__.removesuffix('PrivateKey')} key"
