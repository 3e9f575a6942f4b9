"""Grants as the evaluator sees them: who, which operations, under which encryption context.

KMS "Grants in AWS KMS" and "Grant constraints"
(https://docs.aws.amazon.com/kms/latest/developerguide/grants.html, .../grant-concepts.html)
and the ``GrantConstraints`` shape of the service model:

* a grant allows its grantee the listed operations on its key;
* ``EncryptionContextEquals`` needs the request's encryption context to be exactly the
  constraint's; ``EncryptionContextSubset`` needs it to include every constraint pair;
  in a constraint the *key* of each pair is not case-sensitive, the *value* is;
* constraints apply only to operations that carry an encryption context (cryptographic
  operations with symmetric encryption keys); they are not applied to DescribeKey,
  RetireGrant or operations with asymmetric keys.

``GRANT_OPERATIONS`` says which operations a grant may name for each kind of key. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from strongroom.authz.evaluate import RequestPrincipal
from strongroom.domain.enums import KeySpec, KeyUsage

# Every grant may name these, whatever the key (grant-concepts.html, "Grant operations").
_COMMON = frozenset({"CreateGrant", "DescribeKey", "RetireGrant"})

# Key kind → the operations a grant on such a key may name.
GRANT_OPERATIONS: Mapping[str, frozenset[str]] = {
    "SYMMETRIC_ENCRYPTION": _COMMON
    | {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    },
    "ASYMMETRIC_ENCRYPTION": _COMMON
    | {"Decrypt", "Encrypt", "GetPublicKey", "ReEncryptFrom", "ReEncryptTo"},
    "SIGN_VERIFY": _COMMON | {"GetPublicKey", "Sign", "Verify"},
    "GENERATE_VERIFY_MAC": _COMMON | {"GenerateMac", "VerifyMac"},
    "KEY_AGREEMENT": _COMMON | {"DeriveSharedSecret", "GetPublicKey"},
    # ML-KEM keys: inferred from the GrantOperation enum (Encapsulate, Decapsulate); verify.
    "ENCAPSULATE_DECAPSULATE": _COMMON | {"Decapsulate", "Encapsulate", "GetPublicKey"},
}


def key_kind(usage: KeyUsage, spec: KeySpec) -> str:
    """The ``GRANT_OPERATIONS`` row for a key of ``usage`` and ``spec``."""
    if usage is KeyUsage.ENCRYPT_DECRYPT:
        symmetric = spec is KeySpec.SYMMETRIC_DEFAULT
        return "SYMMETRIC_ENCRYPTION" if symmetric else "ASYMMETRIC_ENCRYPTION"
    return usage.value


def invalid_grant_operations(
    usage: KeyUsage, spec: KeySpec, operations: Iterable[str]
) -> tuple[str, ...]:
    """The operations in ``operations`` that a grant on such a key cannot name, sorted."""
    allowed = GRANT_OPERATIONS[key_kind(usage, spec)]
    return tuple(sorted(set(operations) - allowed))


@dataclass(frozen=True, slots=True)
class GrantRule:
    """The part of a grant that authorization needs. Constraint maps are as stored."""

    grantee_principal: str
    operations: frozenset[str]
    encryption_context_equals: Mapping[str, str] | None = None
    encryption_context_subset: Mapping[str, str] | None = None
    _equals: Mapping[str, str] | None = field(init=False, repr=False, compare=False)
    _subset: Mapping[str, str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_equals", _fold(self.encryption_context_equals))
        object.__setattr__(self, "_subset", _fold(self.encryption_context_subset))

    def names(self, principal: RequestPrincipal) -> bool:
        """Whether the grantee is the caller (a grant to a role covers its sessions)."""
        return self.grantee_principal in principal.identities

    def constraints_hold(self, encryption_context: Mapping[str, str] | None) -> bool:
        """Whether the constraints admit a request with ``encryption_context``.

        None means the operation carries no encryption context (asymmetric keys, DescribeKey,
        RetireGrant, ...): constraints do not apply to it.
        """
        if encryption_context is None:
            return True
        context = _fold(encryption_context) or {}
        if self._equals is not None and context != self._equals:
            return False
        return self._subset is None or all(context.get(k) == v for k, v in self._subset.items())


def _fold(context: Mapping[str, str] | None) -> Mapping[str, str] | None:
    # Constraint keys compare case-insensitively, values exactly (GrantConstraints doc).
    return None if context is None else {k.lower(): v for k, v in context.items()}


def grants_allow(
    grants: Iterable[GrantRule],
    principal: RequestPrincipal,
    operation: str,
    encryption_context: Mapping[str, str] | None,
) -> bool:
    """Whether any live grant gives ``principal`` ``operation`` (e.g. ``Decrypt`` or
    ``kms:Decrypt``) for a request with ``encryption_context``; feeds ``evaluate``."""
    name = operation.removeprefix("kms:")
    return any(
        name in g.operations and g.names(principal) and g.constraints_hold(encryption_context)
        for g in grants
    )
