"""Asymmetric operations over bytes: Sign/Verify, RSA Encrypt/Decrypt, ECDH, key material.

The one public surface of the asymmetric crypto layer (key material lives in
``asymmetric_keys``, HMAC in ``hmac``, ML-KEM in ``kem``). Private keys travel as stored
PKCS#8 DER in ``KeyBytes`` or parsed once into a ``KeyPair``; where a public key is
enough, a DER SubjectPublicKeyInfo (``bytes``) is taken too. Every parameter is checked
against ``specs``' tables first, with AWS's errors; crypto failures are opaque
(InvalidCiphertextException with no text) or a plain ``False`` from ``verify``.

Algorithms, as the AWS KMS Developer Guide's key spec reference defines them:

* RSASSA_PSS_SHA_n: PKCS #1 v2.2 §8.1, MGF1 with the same hash, salt as long as the hash;
* RSASSA_PKCS1_V1_5_SHA_n: PKCS #1 v2.2 §8.2;
* ECDSA_SHA_n: FIPS 186-4 §6.4, DER signature (RFC 3279 §2.2.3);
* ED25519_SHA_512: PureEdDSA (RFC 8032 §5.1), MessageType RAW only;
* ML_DSA_SHAKE_256: pure ML-DSA (FIPS 204 Algorithm 2) with an empty context;
* RSAES_OAEP_SHA_1 / _SHA_256: PKCS #1 v2.2 §7.1, MGF1 with the same hash, empty label;
* ECDH: the raw shared secret (the x-coordinate, SP 800-56A §5.7.1.2), as
  DeriveSharedSecret returns it.

MessageType RAW hashes the message with the algorithm's hash; DIGEST signs the given
digest as it is (``Prehashed``) after its length is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from strongroom.crypto.asymmetric_keys import (
    KeyPair,
    generate_data_key_pair,
    generate_private_key,
    load_key_pair,
    load_public_key,
    private_key,
    public_key_der,
)
from strongroom.crypto.specs import (
    check_encryption_algorithm,
    check_key_agreement_algorithm,
    check_key_spec_supported,
    check_rsa_plaintext,
    check_signing_message,
)
from strongroom.domain.enums import (
    EncryptionAlgorithm,
    KeyAgreementAlgorithm,
    KeySpec,
    MessageType,
    SigningAlgorithm,
)
from strongroom.domain.errors import InvalidCiphertextException, KeyStoreError, ValidationException
from strongroom.domain.secrets import KeyBytes

__all__ = [
    "KeyPair",
    "derive_shared_secret",
    "generate_data_key_pair",
    "generate_private_key",
    "load_key_pair",
    "public_key_der",
    "rsa_decrypt",
    "rsa_encrypt",
    "sign",
    "verify",
]

G = SigningAlgorithm
E = EncryptionAlgorithm

_HASHES: Mapping[SigningAlgorithm | EncryptionAlgorithm, Callable[[], hashes.HashAlgorithm]] = {
    G.RSASSA_PSS_SHA_256: hashes.SHA256,
    G.RSASSA_PSS_SHA_384: hashes.SHA384,
    G.RSASSA_PSS_SHA_512: hashes.SHA512,
    G.RSASSA_PKCS1_V1_5_SHA_256: hashes.SHA256,
    G.RSASSA_PKCS1_V1_5_SHA_384: hashes.SHA384,
    G.RSASSA_PKCS1_V1_5_SHA_512: hashes.SHA512,
    G.ECDSA_SHA_256: hashes.SHA256,
    G.ECDSA_SHA_384: hashes.SHA384,
    G.ECDSA_SHA_512: hashes.SHA512,
    E.RSAES_OAEP_SHA_1: hashes.SHA1,
    E.RSAES_OAEP_SHA_256: hashes.SHA256,
}
"""The hash of each RSA / ECDSA signing algorithm and of each RSA-OAEP algorithm."""


def _pss(h: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    # AWS: "a 256-bit salt" for SHA-256 and so on: the salt is as long as the digest.
    return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)


def _pkcs1(h: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    return padding.PKCS1v15()


_RSA_PADDINGS: Mapping[
    SigningAlgorithm, Callable[[hashes.HashAlgorithm], padding.AsymmetricPadding]
] = {
    G.RSASSA_PSS_SHA_256: _pss,
    G.RSASSA_PSS_SHA_384: _pss,
    G.RSASSA_PSS_SHA_512: _pss,
    G.RSASSA_PKCS1_V1_5_SHA_256: _pkcs1,
    G.RSASSA_PKCS1_V1_5_SHA_384: _pkcs1,
    G.RSASSA_PKCS1_V1_5_SHA_512: _pkcs1,
}


def _hash_input(
    algorithm: SigningAlgorithm, message_type: MessageType
) -> hashes.HashAlgorithm | Prehashed:
    h = _HASHES[algorithm]()
    return Prehashed(h) if message_type is MessageType.DIGEST else h


def _inconsistent(kind: str) -> KeyStoreError:
    return KeyStoreError(f"key material is not the {kind} key its key spec names")


# Signers: (private key, message, algorithm, message type) -> signature.
Signer = Callable[[PrivateKeyTypes, bytes, SigningAlgorithm, MessageType], bytes]
# Verifiers: (public key, message, signature, algorithm, message type) -> None, or
# InvalidSignature.
Verifier = Callable[[PublicKeyTypes, bytes, bytes, SigningAlgorithm, MessageType], None]


def _sign_rsa(key: PrivateKeyTypes, msg: bytes, alg: SigningAlgorithm, mt: MessageType) -> bytes:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _inconsistent("RSA")
    return key.sign(msg, _RSA_PADDINGS[alg](_HASHES[alg]()), _hash_input(alg, mt))


def _verify_rsa(
    key: PublicKeyTypes, msg: bytes, sig: bytes, alg: SigningAlgorithm, mt: MessageType
) -> None:
    if not isinstance(key, rsa.RSAPublicKey):
        raise _inconsistent("RSA")
    key.verify(sig, msg, _RSA_PADDINGS[alg](_HASHES[alg]()), _hash_input(alg, mt))


def _sign_ecdsa(key: PrivateKeyTypes, msg: bytes, alg: SigningAlgorithm, mt: MessageType) -> bytes:
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _inconsistent("EC")
    return key.sign(msg, ec.ECDSA(_hash_input(alg, mt)))


def _verify_ecdsa(
    key: PublicKeyTypes, msg: bytes, sig: bytes, alg: SigningAlgorithm, mt: MessageType
) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise _inconsistent("EC")
    key.verify(sig, msg, ec.ECDSA(_hash_input(alg, mt)))


def _sign_ed25519(
    key: PrivateKeyTypes, msg: bytes, alg: SigningAlgorithm, mt: MessageType
) -> bytes:
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise _inconsistent("Ed25519")
    return key.sign(msg)


def _verify_ed25519(
    key: PublicKeyTypes, msg: bytes, sig: bytes, alg: SigningAlgorithm, mt: MessageType
) -> None:
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise _inconsistent("Ed25519")
    key.verify(sig, msg)


def _sign_ml_dsa(key: PrivateKeyTypes, msg: bytes, alg: SigningAlgorithm, mt: MessageType) -> bytes:
    if not isinstance(
        key, mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
    ):
        raise _inconsistent("ML-DSA")
    # EXTERNAL_MU: the caller computed mu (FIPS 204 Algorithm 7, line 6) itself.
    return key.sign_mu(msg) if mt is MessageType.EXTERNAL_MU else key.sign(msg)


def _verify_ml_dsa(
    key: PublicKeyTypes, msg: bytes, sig: bytes, alg: SigningAlgorithm, mt: MessageType
) -> None:
    if not isinstance(
        key, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey
    ):
        raise _inconsistent("ML-DSA")
    if mt is MessageType.EXTERNAL_MU:
        key.verify_mu(sig, msg)
    else:
        key.verify(sig, msg)


_RSA = (_sign_rsa, _verify_rsa)
_ECDSA = (_sign_ecdsa, _verify_ecdsa)

_SCHEMES: Mapping[SigningAlgorithm, tuple[Signer, Verifier]] = {
    G.RSASSA_PSS_SHA_256: _RSA,
    G.RSASSA_PSS_SHA_384: _RSA,
    G.RSASSA_PSS_SHA_512: _RSA,
    G.RSASSA_PKCS1_V1_5_SHA_256: _RSA,
    G.RSASSA_PKCS1_V1_5_SHA_384: _RSA,
    G.RSASSA_PKCS1_V1_5_SHA_512: _RSA,
    G.ECDSA_SHA_256: _ECDSA,
    G.ECDSA_SHA_384: _ECDSA,
    G.ECDSA_SHA_512: _ECDSA,
    G.ED25519_SHA_512: (_sign_ed25519, _verify_ed25519),
    G.ML_DSA_SHAKE_256: (_sign_ml_dsa, _verify_ml_dsa),
}
"""How each signing algorithm this build performs signs and verifies. SM2DSA, Ed25519ph and
SM2DSA and Ed25519ph are refused by ``check_signing_message`` before they get here."""


def sign(
    spec: KeySpec,
    private: KeyBytes | KeyPair,
    message: bytes,
    message_type: MessageType,
    algorithm: SigningAlgorithm,
) -> bytes:
    """Sign ``message`` (or its digest, for DIGEST) with a key of ``spec``, as Sign does.

    Raises InvalidKeyUsageException (algorithm not of the spec), ValidationException
    (message type or digest length), UnsupportedOperationException (what this build refuses).
    """
    check_signing_message(spec, algorithm, message_type, message)
    signer, _ = _SCHEMES[algorithm]
    return signer(private_key(spec, private), message, algorithm, message_type)


def verify(
    spec: KeySpec,
    key: KeyBytes | KeyPair | bytes,
    message: bytes,
    message_type: MessageType,
    algorithm: SigningAlgorithm,
    signature: bytes,
) -> bool:
    """Whether ``signature`` is ``algorithm``'s signature of ``message`` under the key.

    ``key`` is the stored private material (or its ``KeyPair``) or a DER SubjectPublicKeyInfo.
    A wrong signature
    is ``False``, never an exception (the service turns it into KMSInvalidSignatureException);
    parameter mistakes raise as ``sign`` does.
    """
    check_signing_message(spec, algorithm, message_type, message)
    _, verifier = _SCHEMES[algorithm]
    try:
        verifier(load_public_key(spec, key), message, signature, algorithm, message_type)
    except InvalidSignature:
        return False
    return True


def _oaep(algorithm: EncryptionAlgorithm) -> padding.AsymmetricPadding:
    h = _HASHES[algorithm]()
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


def rsa_encrypt(
    spec: KeySpec, key: KeyBytes | KeyPair | bytes, plaintext: bytes, algorithm: EncryptionAlgorithm
) -> bytes:
    """RSAES-OAEP ciphertext of ``plaintext``, as Encrypt returns it for an RSA key.

    ``key`` is the stored private material (or its ``KeyPair``) or a DER SubjectPublicKeyInfo.
    Raises InvalidKeyUsageException (algorithm not of the spec) and ValidationException ("Algorithm
    RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes.").
    """
    check_key_spec_supported(spec)
    check_encryption_algorithm(spec, algorithm)
    public = load_public_key(spec, key)
    if not isinstance(public, rsa.RSAPublicKey):
        raise _inconsistent("RSA")
    check_rsa_plaintext(spec, algorithm, plaintext)
    return public.encrypt(plaintext, _oaep(algorithm))


def rsa_decrypt(
    spec: KeySpec, private: KeyBytes | KeyPair, ciphertext: bytes, algorithm: EncryptionAlgorithm
) -> bytes:
    """The plaintext of an RSAES-OAEP ciphertext, as Decrypt returns it for an RSA key.

    Raises InvalidKeyUsageException (algorithm not of the spec) and InvalidCiphertextException
    with no detail for any ciphertext that does not decrypt (wrong key, algorithm, length or
    padding alike).
    """
    check_key_spec_supported(spec)
    check_encryption_algorithm(spec, algorithm)
    key = private_key(spec, private)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _inconsistent("RSA")
    try:
        return key.decrypt(ciphertext, _oaep(algorithm))
    except ValueError:
        raise InvalidCiphertextException() from None


def _peer_public_key(
    spec: KeySpec, curve: ec.EllipticCurve, der: bytes
) -> ec.EllipticCurvePublicKey:
    try:
        peer = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        # AWS answers a public key that does not parse with a ValidationException without
        # text (recorded: LocalStack's snapshot "response-invalid-public-key").
        raise ValidationException() from None
    if not isinstance(peer, ec.EllipticCurvePublicKey):
        raise ValidationException(
            f"PublicKey is not an elliptic curve public key; a {spec} key needs a "
            f"{curve.name} public key."
        )
    if peer.curve.name != curve.name:
        raise ValidationException(
            f"PublicKey is on curve {peer.curve.name}, but key spec {spec} is on {curve.name}: "
            "both key pairs must be on the same elliptic curve."
        )
    return peer


def derive_shared_secret(
    spec: KeySpec,
    private: KeyBytes | KeyPair,
    peer_public_der: bytes,
    algorithm: KeyAgreementAlgorithm = KeyAgreementAlgorithm.ECDH,
) -> KeyBytes:
    """The raw ECDH shared secret of our private key and the peer's public key, as
    DeriveSharedSecret returns it (the x-coordinate, as long as the curve's field).

    Raises InvalidKeyUsageException (spec without key agreement) and ValidationException
    (peer key not DER SPKI, not EC, or on another curve).
    """
    check_key_spec_supported(spec)
    check_key_agreement_algorithm(spec, algorithm)
    key = private_key(spec, private)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _inconsistent("EC")
    peer = _peer_public_key(spec, key.curve, peer_public_der)
    return KeyBytes(key.exchange(ec.ECDH(), peer))
