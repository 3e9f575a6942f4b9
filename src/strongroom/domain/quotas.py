"""The catalog of AWS KMS quotas: every request quota and resource quota by its Service
Quotas name, with its default value, what it applies to and whether an operator may adjust
it; and which request quota an operation counts against.

Sources: AWS KMS Developer Guide, "Request quotas" (requests-per-second.html) and
"Resource quotas" (resource-limits.html), current pages as stored (excerpts) and the 2023
awsdocs copy (``shared/reference/aws-kms-behaviour.md`` section 8). Where the stored copies
could not confirm a value it is marked ``# unverified`` with what was used instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from strongroom.domain.enums import DataKeyPairSpec, SpecFamily


class QuotaKind(StrEnum):
    REQUEST = "request"  # requests per second; over it: ThrottlingException
    RESOURCE = "resource"  # a count or size; over it: LimitExceededException


@dataclass(frozen=True, slots=True)
class Quota:
    """One quota: ``default`` per second (request quotas) or a count or size (resource
    quotas), in every Region without an entry in ``regional``; ``applies_to`` says what
    counts against it (operations for request quotas)."""

    name: str
    kind: QuotaKind
    default: float
    adjustable: bool
    applies_to: tuple[str, ...]
    regional: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def default_in(self, region: str) -> float:
        """AWS's default value of this quota in ``region``."""
        return self.regional.get(region, self.default)


def _request(name: str, default: float, *ops: str, adjustable: bool = True) -> Quota:
    return Quota(name, QuotaKind.REQUEST, default, adjustable, ops)


def _resource(name: str, default: float, what: str, *, adjustable: bool) -> Quota:
    return Quota(name, QuotaKind.RESOURCE, default, adjustable, (what,))


# -- request quotas: the shared cryptographic quotas --------------------------------------

SYMMETRIC_OPERATIONS = (
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "ReEncrypt",
    "VerifyMac",
)
ASYMMETRIC_OPERATIONS = (
    "Decrypt",
    "Encrypt",
    "ReEncrypt",
    "Sign",
    "Verify",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
)

_SYMMETRIC_BY_REGION = MappingProxyType(
    {
        # 20,000 in these Regions (stored excerpt of the current page).
        **dict.fromkeys(
            (
                "us-east-2",
                "ap-southeast-1",
                "ap-southeast-2",
                "ap-northeast-1",
                "eu-central-1",
                "eu-west-2",
            ),
            20_000.0,
        ),
        # The largest Regions: 100,000 on the live page as last read; the stored copies
        # are truncated before this tier. # unverified
        **dict.fromkeys(("us-east-1", "us-west-2", "eu-west-1"), 100_000.0),
    }
)

SYMMETRIC = Quota(
    "Cryptographic operations (symmetric) request rate",
    QuotaKind.REQUEST,
    10_000,
    True,
    SYMMETRIC_OPERATIONS,
    _SYMMETRIC_BY_REGION,
)
RSA = _request("Cryptographic operations (RSA) request rate", 1_000, *ASYMMETRIC_OPERATIONS)
ECC = _request("Cryptographic operations (ECC) request rate", 1_000, *ASYMMETRIC_OPERATIONS)
ML_DSA = _request("Cryptographic operations (ML-DSA) request rate", 1_000, "Sign", "Verify")
# Not on the stored copies of the page (ML-KEM keys are newer): the other asymmetric
# classes' 1,000. # unverified
ML_KEM = _request(
    "Cryptographic operations (ML-KEM) request rate", 1_000, "Encapsulate", "Decapsulate"
)
CLOUDHSM_KEY_STORE = _request(
    "AWS CloudHSM key store request quota",
    1_800,
    "cryptographic operations on the keys of one AWS CloudHSM key store (each store its own)",
    adjustable=False,
)
EXTERNAL_KEY_STORE = _request(
    "External key store request quota",
    1_800,
    "cryptographic operations on the keys of one external key store (each store its own)",
)

CRYPTO_CLASS: Mapping[SpecFamily, Quota] = MappingProxyType(
    {
        SpecFamily.SYMMETRIC: SYMMETRIC,
        SpecFamily.HMAC: SYMMETRIC,
        SpecFamily.RSA: RSA,
        SpecFamily.ECC: ECC,
        SpecFamily.SM2: ECC,  # "elliptic curve (ECC) and SM2" share one quota
        SpecFamily.ML_DSA: ML_DSA,
        SpecFamily.ML_KEM: ML_KEM,
    }
)
"""The shared cryptographic quota of a key's spec family."""

CRYPTO_OPERATIONS = frozenset(SYMMETRIC_OPERATIONS) | frozenset(ASYMMETRIC_OPERATIONS)
"""Operations that count against the cryptographic quota of their key's class."""

STORE_COST: Mapping[str, int] = MappingProxyType(
    dict.fromkeys(("GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateRandom"), 3)
)
"""Of a custom key store's quota these use about three times what Encrypt does (AWS)."""

# -- request quotas: GenerateDataKeyPair by the data key pair's spec -----------------------

_PAIR_RATES: Mapping[DataKeyPairSpec, float] = {
    DataKeyPairSpec.RSA_2048: 1,
    DataKeyPairSpec.RSA_3072: 0.5,
    DataKeyPairSpec.RSA_4096: 0.1,
    DataKeyPairSpec.ECC_NIST_P256: 25,
    DataKeyPairSpec.ECC_NIST_P384: 10,
    DataKeyPairSpec.ECC_NIST_P521: 5,
    DataKeyPairSpec.ECC_SECG_P256K1: 25,
    DataKeyPairSpec.SM2: 25,
    # Newer specs, not on the stored copies: their curve's or their family's rate.
    DataKeyPairSpec.ECC_NIST_EDWARDS25519: 25,  # unverified
    DataKeyPairSpec.ML_KEM_512: 25,  # unverified
    DataKeyPairSpec.ML_KEM_768: 25,  # unverified
    DataKeyPairSpec.ML_KEM_1024: 25,  # unverified
}
KEY_PAIR: Mapping[DataKeyPairSpec, Quota] = MappingProxyType(
    {
        spec: _request(
            f"GenerateDataKeyPair ({spec.value}) request rate",
            rate,
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
        )
        for spec, rate in _PAIR_RATES.items()
    }
)
"""GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext share one quota per KeyPairSpec."""
_SPECS = frozenset(s.value for s in DataKeyPairSpec)

# -- request quotas: each other operation its own ------------------------------------------

_OPERATION_RATES: Mapping[str, float] = {
    "CancelKeyDeletion": 5,
    "ConnectCustomKeyStore": 5,
    "CreateAlias": 5,
    "CreateCustomKeyStore": 5,
    "CreateGrant": 50,
    "CreateKey": 5,
    "DeleteAlias": 15,
    "DeleteCustomKeyStore": 5,
    "DeleteImportedKeyMaterial": 15,
    "DescribeCustomKeyStores": 5,
    "DescribeKey": 2_000,
    "DisableKey": 5,
    "DisableKeyRotation": 5,
    "DisconnectCustomKeyStore": 5,
    "EnableKey": 5,
    "EnableKeyRotation": 15,
    "GetKeyPolicy": 1_000,
    "GetKeyRotationStatus": 1_000,
    "GetParametersForImport": 0.25,  # one in 4 seconds
    "GetPublicKey": 2_000,
    "ImportKeyMaterial": 5,
    "ListAliases": 500,
    "ListGrants": 100,
    "ListKeyPolicies": 100,
    "ListKeys": 500,
    "ListResourceTags": 2_000,
    "ListRetirableGrants": 100,
    "PutKeyPolicy": 15,
    "ReplicateKey": 5,
    "RetireGrant": 30,
    "RevokeGrant": 30,
    "ScheduleKeyDeletion": 15,
    "TagResource": 10,
    "UntagResource": 5,
    "UpdateAlias": 5,
    "UpdateCustomKeyStore": 5,
    "UpdateKeyDescription": 5,
    "UpdatePrimaryRegion": 5,
    # Newer operations, not on the stored copies: a rate like their neighbours'.
    "RotateKeyOnDemand": 5,  # unverified
    "ListKeyRotations": 100,  # unverified
    "GetKeyLastUsage": 100,  # unverified
}
REQUEST_COST: Mapping[str, int] = MappingProxyType({"UpdatePrimaryRegion": 2})
"""Requests that count more than once against their quota: UpdatePrimaryRegion twice (AWS).
ReplicateKey counts once, and twice against CreateKey in the replica's Region."""

OPERATION: Mapping[str, Quota] = MappingProxyType(
    {op: _request(f"{op} request rate", rate, op) for op, rate in _OPERATION_RATES.items()}
)
"""The request quota of each operation that has one of its own."""

# -- resource quotas ------------------------------------------------------------------------

KMS_KEYS = _resource(
    "AWS KMS keys",
    100_000,
    "customer managed keys per account and Region (AWS managed keys do not count)",
    adjustable=True,
)
ALIASES_PER_KEY = _resource(
    "Aliases per KMS key", 50, "customer created aliases of one key", adjustable=True
)
GRANTS_PER_KEY = _resource("Grants per KMS key", 50_000, "grants on one key", adjustable=True)
KEY_POLICY_SIZE = _resource(
    "Key policy document size", 32_768, "bytes of a key policy document", adjustable=False
)
CUSTOM_KEY_STORES = _resource(
    "Custom key stores", 10, "custom key stores per account and Region", adjustable=True
)
ON_DEMAND_ROTATIONS = _resource(
    "On-demand rotation", 25, "on-demand rotations of one key", adjustable=False
)
# Not in the resource quota table: the tagging guide's "up to 50 tags" per key.
TAGS_PER_KEY = _resource("Tags per KMS key", 50, "tags on one key", adjustable=True)

RESOURCE_QUOTAS = (
    KMS_KEYS,
    ALIASES_PER_KEY,
    GRANTS_PER_KEY,
    KEY_POLICY_SIZE,
    CUSTOM_KEY_STORES,
    ON_DEMAND_ROTATIONS,
    TAGS_PER_KEY,
)

ALL: Mapping[str, Quota] = MappingProxyType(
    {
        q.name: q
        for q in (
            SYMMETRIC,
            RSA,
            ECC,
            ML_DSA,
            ML_KEM,
            CLOUDHSM_KEY_STORE,
            EXTERNAL_KEY_STORE,
            *KEY_PAIR.values(),
            *OPERATION.values(),
            *RESOURCE_QUOTAS,
        )
    }
)
"""Every quota by its Service Quotas name."""

MAX_VALUE = 1e9
"""The largest value an operator may give a quota."""


def check_value(quota: Quota, value: float) -> None:
    """ValueError unless ``value`` is one ``quota`` can take: a finite number above zero
    (request rates may be fractions, as GetParametersForImport's 0.25; counts and sizes are
    whole), at most MAX_VALUE."""
    if not value > 0 or value > MAX_VALUE:
        raise ValueError(
            f"quota {quota.name!r}: value {value:g} is out of range: it must be more than 0 "
            f"and at most {MAX_VALUE:g}"
        )
    if quota.kind is QuotaKind.RESOURCE and value != int(value):
        raise ValueError(
            f"quota {quota.name!r}: value {value:g} is not a whole number ({quota.kind} "
            "quotas count resources or bytes)"
        )


def request_quotas_of(
    operation: str,
    family: SpecFamily | None,
    key_pair_spec: str | None = None,
) -> tuple[Quota, ...]:
    """The request quotas that one request of ``operation`` counts against, but a custom key
    store's: the cryptographic class of its key's spec ``family`` (None: not known or no key,
    counted as symmetric: symmetric ciphertext names its key, and GenerateRandom has none),
    GenerateDataKeyPair's quota of ``key_pair_spec``, or the operation's own."""
    if operation in CRYPTO_OPERATIONS:
        return (CRYPTO_CLASS[family or SpecFamily.SYMMETRIC],)
    if operation in ("GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"):
        quota = KEY_PAIR.get(DataKeyPairSpec(key_pair_spec)) if key_pair_spec in _SPECS else None
        return () if quota is None else (quota,)
    own = OPERATION.get(operation)
    return () if own is None else (own,)
