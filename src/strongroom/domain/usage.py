"""Which keys each cryptographic operation takes, as rules: the key usage it needs and, for
some, the kind of key material too (``domain.operations`` gives each operation its rule)."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.domain.enums import KeyUsage, SpecFamily
from strongroom.domain.errors import (
    InvalidKeyUsageException,
    KmsError,
    UnsupportedOperationException,
)
from strongroom.domain.models import Key

U = KeyUsage


@dataclass(frozen=True, slots=True)
class UsageRule:
    """The key usages an operation takes and, when only some key specs will do whatever the
    usage, the spec families it takes and the error for another."""

    usages: frozenset[KeyUsage]
    families: frozenset[SpecFamily] | None = None
    wrong_spec: type[KmsError] = InvalidKeyUsageException

    def check(self, operation: str, key: Key) -> None:
        """InvalidKeyUsageException in AWS's words when ``key`` cannot do ``operation``
        ("<arn> key usage is SIGN_VERIFY which is not valid for Encrypt."); then, when the
        rule names spec families, its error for a key spec of another
        ("<arn> key KeySpec is RSA_2048 which is not valid for GenerateDataKey.")."""
        if key.key_usage not in self.usages:
            raise InvalidKeyUsageException(
                f"{key.arn} key usage is {key.key_usage} which is not valid for {operation}."
            )
        if self.families is not None and key.key_spec.family not in self.families:
            raise self.wrong_spec(
                f"{key.arn} key KeySpec is {key.key_spec} which is not valid for {operation}."
            )


def _only(usage: KeyUsage) -> UsageRule:
    return UsageRule(frozenset({usage}))


ENCRYPTION = _only(U.ENCRYPT_DECRYPT)
SIGNING = _only(U.SIGN_VERIFY)
MAC = _only(U.GENERATE_VERIFY_MAC)
KEY_AGREEMENT = _only(U.KEY_AGREEMENT)
ENCAPSULATION = _only(U.ENCAPSULATE_DECAPSULATE)
# GenerateDataKey* doc: "You cannot specify an asymmetric KMS key"; the wording of the error
# is local-kms's (inferred: not recorded against AWS).
DATA_KEY = UsageRule(frozenset({U.ENCRYPT_DECRYPT}), frozenset({SpecFamily.SYMMETRIC}))
# GetPublicKey doc: "Returns the public key of an asymmetric KMS key": every usage a key pair
# can have (an HMAC key has no public key); a symmetric key is UnsupportedOperationException
# (one of its modelled errors; wording inferred).
PUBLIC_KEY = UsageRule(
    frozenset({U.ENCRYPT_DECRYPT, U.SIGN_VERIFY, U.KEY_AGREEMENT, U.ENCAPSULATE_DECAPSULATE}),
    frozenset(f for f in SpecFamily if f.key_pair),
    UnsupportedOperationException,
)
