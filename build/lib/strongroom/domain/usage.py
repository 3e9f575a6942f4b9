"""Which keys each cryptographic operation takes, as tables: the key usage it needs and, for
some, the kind of key material too."""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.domain.enums import KeySpec, KeyUsage
from strongroom.domain.errors import (
    InvalidKeyUsageException,
    KmsError,
    UnsupportedOperationException,
)
from strongroom.domain.models import Key

U = KeyUsage
S = KeySpec

REQUIRED_USAGE: Mapping[str, frozenset[KeyUsage]] = {
    "Encrypt": frozenset({U.ENCRYPT_DECRYPT}),
    "Decrypt": frozenset({U.ENCRYPT_DECRYPT}),
    "ReEncrypt": frozenset({U.ENCRYPT_DECRYPT}),
    "GenerateDataKey": frozenset({U.ENCRYPT_DECRYPT}),
    "GenerateDataKeyWithoutPlaintext": frozenset({U.ENCRYPT_DECRYPT}),
    "GenerateDataKeyPair": frozenset({U.ENCRYPT_DECRYPT}),
    "GenerateDataKeyPairWithoutPlaintext": frozenset({U.ENCRYPT_DECRYPT}),
    "Sign": frozenset({U.SIGN_VERIFY}),
    "Verify": frozenset({U.SIGN_VERIFY}),
    "GenerateMac": frozenset({U.GENERATE_VERIFY_MAC}),
    "VerifyMac": frozenset({U.GENERATE_VERIFY_MAC}),
    "DeriveSharedSecret": frozenset({U.KEY_AGREEMENT}),
    "Encapsulate": frozenset({U.ENCAPSULATE_DECAPSULATE}),
    "Decapsulate": frozenset({U.ENCAPSULATE_DECAPSULATE}),
    # Every usage a key pair can have; an HMAC key has no public key.
    "GetPublicKey": frozenset(
        {U.ENCRYPT_DECRYPT, U.SIGN_VERIFY, U.KEY_AGREEMENT, U.ENCAPSULATE_DECAPSULATE}
    ),
}

_SYMMETRIC_ENCRYPTION = frozenset({S.SYMMETRIC_DEFAULT})
_KEY_PAIRS = frozenset(S) - {S.SYMMETRIC_DEFAULT, S.HMAC_224, S.HMAC_256, S.HMAC_384, S.HMAC_512}

REQUIRED_SPECS: Mapping[str, tuple[frozenset[KeySpec], type[KmsError]]] = {
    # GenerateDataKey* doc: "You cannot specify an asymmetric KMS key"; the wording of the
    # error is local-kms's (inferred: not recorded against AWS).
    "GenerateDataKey": (_SYMMETRIC_ENCRYPTION, InvalidKeyUsageException),
    "GenerateDataKeyWithoutPlaintext": (_SYMMETRIC_ENCRYPTION, InvalidKeyUsageException),
    "GenerateDataKeyPair": (_SYMMETRIC_ENCRYPTION, InvalidKeyUsageException),
    "GenerateDataKeyPairWithoutPlaintext": (_SYMMETRIC_ENCRYPTION, InvalidKeyUsageException),
    # GetPublicKey doc: "Returns the public key of an asymmetric KMS key"; a symmetric key is
    # UnsupportedOperationException (one of its modelled errors; wording inferred).
    "GetPublicKey": (_KEY_PAIRS, UnsupportedOperationException),
}
"""Operations that take only some key specs, whatever the usage, and the error otherwise."""


def check_usage(operation: str, key: Key) -> None:
    """InvalidKeyUsageException in AWS's words when ``key`` cannot do ``operation``
    ("<arn> key usage is SIGN_VERIFY which is not valid for Encrypt."); then, for the
    operations of ``REQUIRED_SPECS``, its error when the key spec does not fit
    ("<arn> key KeySpec is RSA_2048 which is not valid for GenerateDataKey.")."""
    if key.key_usage not in REQUIRED_USAGE[operation]:
        raise InvalidKeyUsageException(
            f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}."
        )
    rule = REQUIRED_SPECS.get(operation)
    if rule is not None and key.key_spec not in rule[0]:
        raise rule[1](
            f"{key.arn} key KeySpec is {key.key_spec} which is not valid for {operation}."
        )
