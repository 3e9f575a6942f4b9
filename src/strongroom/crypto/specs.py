"""What every key spec allows, as tables: usages, algorithms, message types and size limits.

Sources (one line each; the tests hold the tables to them):

* the KMS service model in botocore (``kms/2014-11-01/service-2.json``, 1.44.x): the enums
  ``KeySpec``, ``KeyUsageType``, ``SigningAlgorithmSpec``, ``MacAlgorithmSpec``,
  ``KeyAgreementAlgorithmSpec``, ``EncapsulationAlgorithmSpec``, ``MessageType`` and
  ``DataKeyPairSpec``; the ``CreateKeyRequest.KeyUsage`` doc for which usages each spec
  takes; the ``Sign``/``Verify`` ``MessageType`` doc for the Ed25519 and ML-DSA message
  types and the 64-byte EXTERNAL_MU; the ``Encrypt`` doc for the RSA plaintext limits;
* the AWS KMS Developer Guide, "Key spec reference" (RSA, ECC, SM2, HMAC, ML-DSA, ML-KEM
  sections) for the algorithm lists DescribeKey shows and their order;
* error texts recorded against AWS (``shared/reference/aws-kms-behaviour.md`` §13) where
  they exist; the others follow the same wording and are marked "inferred".
"""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.domain.enums import (
    DataKeyPairSpec,
    EncapsulationAlgorithm,
    EncryptionAlgorithm,
    KeyAgreementAlgorithm,
    KeySpec,
    KeyUsage,
    MacAlgorithm,
    MessageType,
    SigningAlgorithm,
)
from strongroom.domain.errors import (
    InvalidKeyUsageException,
    UnsupportedOperationException,
    ValidationException,
)

Algorithm = (
    EncryptionAlgorithm
    | SigningAlgorithm
    | MacAlgorithm
    | KeyAgreementAlgorithm
    | EncapsulationAlgorithm
)

S = KeySpec
U = KeyUsage
E = EncryptionAlgorithm
G = SigningAlgorithm
M = MacAlgorithm
T = MessageType

# The order is the order DescribeKey and GetPublicKey list them in.
_RSA_ENCRYPTION: tuple[EncryptionAlgorithm, ...] = (E.RSAES_OAEP_SHA_1, E.RSAES_OAEP_SHA_256)
_RSA_SIGNING: tuple[SigningAlgorithm, ...] = (
    G.RSASSA_PKCS1_V1_5_SHA_256,
    G.RSASSA_PKCS1_V1_5_SHA_384,
    G.RSASSA_PKCS1_V1_5_SHA_512,
    G.RSASSA_PSS_SHA_256,
    G.RSASSA_PSS_SHA_384,
    G.RSASSA_PSS_SHA_512,
)
_ECDH: tuple[KeyAgreementAlgorithm, ...] = (KeyAgreementAlgorithm.ECDH,)
_ML_DSA: Mapping[KeyUsage, tuple[Algorithm, ...]] = {U.SIGN_VERIFY: (G.ML_DSA_SHAKE_256,)}
_ML_KEM: Mapping[KeyUsage, tuple[Algorithm, ...]] = {
    U.ENCAPSULATE_DECAPSULATE: (EncapsulationAlgorithm.ML_KEM,)
}
_RSA: Mapping[KeyUsage, tuple[Algorithm, ...]] = {
    U.ENCRYPT_DECRYPT: _RSA_ENCRYPTION,
    U.SIGN_VERIFY: _RSA_SIGNING,
}

KEY_SPECS: Mapping[KeySpec, Mapping[KeyUsage, tuple[Algorithm, ...]]] = {
    S.SYMMETRIC_DEFAULT: {U.ENCRYPT_DECRYPT: (E.SYMMETRIC_DEFAULT,)},
    S.RSA_2048: _RSA,
    S.RSA_3072: _RSA,
    S.RSA_4096: _RSA,
    S.ECC_NIST_P256: {U.SIGN_VERIFY: (G.ECDSA_SHA_256,), U.KEY_AGREEMENT: _ECDH},
    S.ECC_NIST_P384: {U.SIGN_VERIFY: (G.ECDSA_SHA_384,), U.KEY_AGREEMENT: _ECDH},
    S.ECC_NIST_P521: {U.SIGN_VERIFY: (G.ECDSA_SHA_512,), U.KEY_AGREEMENT: _ECDH},
    S.ECC_SECG_P256K1: {U.SIGN_VERIFY: (G.ECDSA_SHA_256,)},
    S.ECC_NIST_EDWARDS25519: {U.SIGN_VERIFY: (G.ED25519_SHA_512, G.ED25519_PH_SHA_512)},
    S.HMAC_224: {U.GENERATE_VERIFY_MAC: (M.HMAC_SHA_224,)},
    S.HMAC_256: {U.GENERATE_VERIFY_MAC: (M.HMAC_SHA_256,)},
    S.HMAC_384: {U.GENERATE_VERIFY_MAC: (M.HMAC_SHA_384,)},
    S.HMAC_512: {U.GENERATE_VERIFY_MAC: (M.HMAC_SHA_512,)},
    S.SM2: {
        U.ENCRYPT_DECRYPT: (E.SM2PKE,),
        U.SIGN_VERIFY: (G.SM2DSA,),
        U.KEY_AGREEMENT: _ECDH,
    },
    S.ML_DSA_44: _ML_DSA,
    S.ML_DSA_65: _ML_DSA,
    S.ML_DSA_87: _ML_DSA,
    S.ML_KEM_512: _ML_KEM,
    S.ML_KEM_768: _ML_KEM,
    S.ML_KEM_1024: _ML_KEM,
}
"""For every key spec: the key usages it allows and, per usage, the algorithms DescribeKey
lists (EncryptionAlgorithms, SigningAlgorithms, MacAlgorithms, KeyAgreementAlgorithms or
EncapsulationAlgorithms: only the list of the key's own usage appears)."""

DEFAULT_KEY_USAGE: Mapping[KeySpec, KeyUsage] = {S.SYMMETRIC_DEFAULT: U.ENCRYPT_DECRYPT}
"""Specs whose KeyUsage may be left out of CreateKey; every other spec needs one."""

UNSUPPORTED_KEY_SPECS: Mapping[KeySpec, str] = {
    S.SM2: "pyca/cryptography has no SM2, SM2DSA or SM2PKE",
    S.ML_KEM_512: "pyca/cryptography offers ML-KEM-768 and ML-KEM-1024 only",
}
"""Specs of the model this build refuses (UnsupportedOperationException), and why."""

HMAC_KEY_BYTES: Mapping[KeySpec, int] = {
    S.HMAC_224: 28,
    S.HMAC_256: 32,
    S.HMAC_384: 48,
    S.HMAC_512: 64,
}
"""Length of the secret KMS generates for an HMAC key: the bits in the spec's name."""

SYMMETRIC_KEY_BYTES: Mapping[KeySpec, int] = {S.SYMMETRIC_DEFAULT: 32, **HMAC_KEY_BYTES}
"""Specs whose material is a random secret rather than a key pair, and its length."""

RSA_OAEP_MAX_PLAINTEXT: Mapping[tuple[KeySpec, EncryptionAlgorithm], int] = {
    (S.RSA_2048, E.RSAES_OAEP_SHA_1): 214,
    (S.RSA_3072, E.RSAES_OAEP_SHA_1): 342,
    (S.RSA_4096, E.RSAES_OAEP_SHA_1): 470,
    (S.RSA_2048, E.RSAES_OAEP_SHA_256): 190,
    (S.RSA_3072, E.RSAES_OAEP_SHA_256): 318,
    (S.RSA_4096, E.RSAES_OAEP_SHA_256): 446,
}
"""Largest plaintext Encrypt takes (``Encrypt`` doc): key bytes - 2 * hash bytes - 2."""

ML_KEM_CIPHERTEXT_BYTES: Mapping[KeySpec, int] = {
    S.ML_KEM_512: 768,
    S.ML_KEM_768: 1088,
    S.ML_KEM_1024: 1568,
}
"""Length of an encapsulated shared secret (``EncapsulateResponse.SharedSecretCiphertextBlob``
doc); Decapsulate of any other length is InvalidCiphertextException."""

SIGNING_MESSAGE_TYPES: Mapping[SigningAlgorithm, frozenset[MessageType]] = {
    **{a: frozenset({T.RAW, T.DIGEST}) for a in _RSA_SIGNING},
    G.ECDSA_SHA_256: frozenset({T.RAW, T.DIGEST}),
    G.ECDSA_SHA_384: frozenset({T.RAW, T.DIGEST}),
    G.ECDSA_SHA_512: frozenset({T.RAW, T.DIGEST}),
    G.SM2DSA: frozenset({T.RAW, T.DIGEST}),
    # Sign doc: "ED25519_SHA_512 ... requires MessageType:RAW, ED25519_PH_SHA_512 requires
    # MessageType:DIGEST. These message types cannot be used interchangeably."
    G.ED25519_SHA_512: frozenset({T.RAW}),
    G.ED25519_PH_SHA_512: frozenset({T.DIGEST}),
    # ML-DSA signs the message (RAW) or a caller-computed mu (FIPS 204 §6.2), never a digest.
    G.ML_DSA_SHAKE_256: frozenset({T.RAW, T.EXTERNAL_MU}),
}
"""The MessageType values each signing algorithm accepts."""

SIGNING_INPUT_BYTES: Mapping[tuple[SigningAlgorithm, MessageType], int] = {
    (G.RSASSA_PSS_SHA_256, T.DIGEST): 32,
    (G.RSASSA_PSS_SHA_384, T.DIGEST): 48,
    (G.RSASSA_PSS_SHA_512, T.DIGEST): 64,
    (G.RSASSA_PKCS1_V1_5_SHA_256, T.DIGEST): 32,
    (G.RSASSA_PKCS1_V1_5_SHA_384, T.DIGEST): 48,
    (G.RSASSA_PKCS1_V1_5_SHA_512, T.DIGEST): 64,
    (G.ECDSA_SHA_256, T.DIGEST): 32,
    (G.ECDSA_SHA_384, T.DIGEST): 48,
    (G.ECDSA_SHA_512, T.DIGEST): 64,
    (G.SM2DSA, T.DIGEST): 32,
    (G.ED25519_PH_SHA_512, T.DIGEST): 64,
    (G.ML_DSA_SHAKE_256, T.EXTERNAL_MU): 64,
}
"""Exact Message length for a DIGEST (the hash's output) or an EXTERNAL_MU (64 bytes)."""

UNSUPPORTED_SIGNING: Mapping[tuple[SigningAlgorithm, MessageType], str] = {
    (G.ED25519_PH_SHA_512, T.DIGEST): "pyca/cryptography has no Ed25519ph (RFC 8032 HashEdDSA)",
}
"""Combinations AWS offers that this build refuses (UnsupportedOperationException), and why.
SM2DSA is refused with its key spec."""

DATA_KEY_PAIR_SPECS: Mapping[DataKeyPairSpec, KeySpec] = {
    DataKeyPairSpec(s): KeySpec(s) for s in DataKeyPairSpec
}
"""The key material of each GenerateDataKeyPair KeyPairSpec, named like the key spec."""

KEY_USAGE_REQUIRED = (
    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
)


def _incompatible(algorithm: Algorithm, spec: KeySpec) -> InvalidKeyUsageException:
    # Recorded against AWS for MAC algorithms; the same text for the other kinds (inferred).
    return InvalidKeyUsageException(f"Algorithm {algorithm} is incompatible with key spec {spec}.")


def check_key_spec_supported(spec: KeySpec) -> None:
    """UnsupportedOperationException naming ``spec`` when this build cannot serve it."""
    reason = UNSUPPORTED_KEY_SPECS.get(spec)
    if reason is not None:
        raise UnsupportedOperationException(
            f"KeySpec {spec} is not supported by this server ({reason})."
        )


def check_key_spec_usage(spec: KeySpec, usage: KeyUsage | None) -> KeyUsage:
    """The key usage CreateKey gives a key of ``spec`` when asked for ``usage`` (None: omitted).

    Raises ValidationException in AWS's words when the usage is missing or does not fit the
    spec, then UnsupportedOperationException when this build cannot serve the spec.
    """
    if usage is None:
        default = DEFAULT_KEY_USAGE.get(spec)
        if default is None:
            raise ValidationException(KEY_USAGE_REQUIRED)
        usage = default
    if usage not in KEY_SPECS[spec]:
        raise ValidationException(f"KeyUsage {usage} is not compatible with KeySpec {spec}")
    check_key_spec_supported(spec)
    return usage


def key_algorithms(spec: KeySpec, usage: KeyUsage) -> tuple[Algorithm, ...]:
    """The algorithm list DescribeKey and GetPublicKey show for a key (empty if none)."""
    return KEY_SPECS[spec].get(usage, ())


def encryption_algorithms(spec: KeySpec) -> tuple[EncryptionAlgorithm, ...]:
    """DescribeKey's EncryptionAlgorithms for an ENCRYPT_DECRYPT key of ``spec``."""
    return tuple(a for a in key_algorithms(spec, U.ENCRYPT_DECRYPT) if isinstance(a, E))


def signing_algorithms(spec: KeySpec) -> tuple[SigningAlgorithm, ...]:
    """DescribeKey's SigningAlgorithms for a SIGN_VERIFY key of ``spec``."""
    return tuple(a for a in key_algorithms(spec, U.SIGN_VERIFY) if isinstance(a, G))


def mac_algorithms(spec: KeySpec) -> tuple[MacAlgorithm, ...]:
    """DescribeKey's MacAlgorithms for a GENERATE_VERIFY_MAC key of ``spec``."""
    return tuple(a for a in key_algorithms(spec, U.GENERATE_VERIFY_MAC) if isinstance(a, M))


def key_agreement_algorithms(spec: KeySpec) -> tuple[KeyAgreementAlgorithm, ...]:
    """DescribeKey's KeyAgreementAlgorithms for a KEY_AGREEMENT key of ``spec``."""
    return tuple(
        a for a in key_algorithms(spec, U.KEY_AGREEMENT) if isinstance(a, KeyAgreementAlgorithm)
    )


def encapsulation_algorithms(spec: KeySpec) -> tuple[EncapsulationAlgorithm, ...]:
    """DescribeKey's EncapsulationAlgorithms for an ENCAPSULATE_DECAPSULATE key of ``spec``."""
    return tuple(
        a
        for a in key_algorithms(spec, U.ENCAPSULATE_DECAPSULATE)
        if isinstance(a, EncapsulationAlgorithm)
    )


def check_encryption_algorithm(spec: KeySpec, algorithm: EncryptionAlgorithm) -> None:
    """InvalidKeyUsageException when ``spec`` cannot encrypt with ``algorithm``."""
    if algorithm not in encryption_algorithms(spec):
        raise _incompatible(algorithm, spec)


def check_signing_algorithm(spec: KeySpec, algorithm: SigningAlgorithm) -> None:
    """InvalidKeyUsageException when ``spec`` cannot sign with ``algorithm``."""
    if algorithm not in signing_algorithms(spec):
        raise _incompatible(algorithm, spec)


def check_mac_algorithm(spec: KeySpec, algorithm: MacAlgorithm) -> None:
    """InvalidKeyUsageException, in AWS's words, when ``spec`` cannot MAC with ``algorithm``."""
    if algorithm not in mac_algorithms(spec):
        raise _incompatible(algorithm, spec)


def check_key_agreement_algorithm(spec: KeySpec, algorithm: KeyAgreementAlgorithm) -> None:
    """InvalidKeyUsageException when ``spec`` cannot derive a secret with ``algorithm``."""
    if algorithm not in key_agreement_algorithms(spec):
        raise _incompatible(algorithm, spec)


def check_encapsulation_algorithm(spec: KeySpec, algorithm: EncapsulationAlgorithm) -> None:
    """InvalidKeyUsageException when ``spec`` cannot encapsulate with ``algorithm``."""
    if algorithm not in encapsulation_algorithms(spec):
        raise _incompatible(algorithm, spec)


def check_signing_message(
    spec: KeySpec, algorithm: SigningAlgorithm, message_type: MessageType, message: bytes
) -> None:
    """Check a Sign/Verify request's algorithm, MessageType and Message against ``spec``.

    Raises UnsupportedOperationException (spec this build refuses), InvalidKeyUsageException
    (algorithm not of the spec), ValidationException (message type not of the algorithm;
    digest or mu of the wrong length: "Digest is invalid length for algorithm X."), then
    UnsupportedOperationException for combinations AWS offers that this build cannot do.
    """
    check_key_spec_supported(spec)
    check_signing_algorithm(spec, algorithm)
    if message_type not in SIGNING_MESSAGE_TYPES[algorithm]:
        # Inferred wording; ML-DSA names the key spec, the others the algorithm.
        subject = (
            f"key spec {spec}" if algorithm is G.ML_DSA_SHAKE_256 else f"algorithm {algorithm}"
        )
        raise ValidationException(f"Message type {message_type} is incompatible with {subject}.")
    expected = SIGNING_INPUT_BYTES.get((algorithm, message_type))
    if expected is not None and len(message) != expected:
        what = "External Mu" if message_type is T.EXTERNAL_MU else "Digest"
        raise ValidationException(f"{what} is invalid length for algorithm {algorithm}.")
    reason = UNSUPPORTED_SIGNING.get((algorithm, message_type))
    if reason is not None:
        raise UnsupportedOperationException(
            f"{algorithm} with MessageType {message_type} is not supported by this server "
            f"({reason})."
        )


def check_rsa_plaintext(spec: KeySpec, algorithm: EncryptionAlgorithm, plaintext: bytes) -> None:
    """ValidationException, in AWS's words, when ``plaintext`` is too long for RSA-OAEP."""
    limit = RSA_OAEP_MAX_PLAINTEXT[(spec, algorithm)]
    if len(plaintext) > limit:
        raise ValidationException(
            f"Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than "
            f"{limit} bytes."
        )


def data_key_pair_key_spec(spec: DataKeyPairSpec) -> KeySpec:
    """The key spec whose material a data key pair of ``spec`` is; UnsupportedOperationException
    naming ``spec`` when this build cannot make it."""
    key_spec = DATA_KEY_PAIR_SPECS[spec]
    reason = UNSUPPORTED_KEY_SPECS.get(key_spec)
    if reason is not None:
        raise UnsupportedOperationException(
            f"KeyPairSpec {spec} is not supported by this server ({reason})."
        )
    return key_spec
