"""Which key usage each cryptographic operation needs, as one table."""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.domain.enums import KeyUsage
from strongroom.domain.errors import InvalidKeyUsageException
from strongroom.domain.models import Key

U = KeyUsage

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
}


def check_usage(operation: str, key: Key) -> None:
    """InvalidKeyUsageException in AWS's words when ``key`` cannot do ``operation``."""
    if key.key_usage not in REQUIRED_USAGE[operation]:
        raise InvalidKeyUsageException(
            f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}."
        )
