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

``GRANT_OPERATIONS`` says which operations a grant may name for each kind of key;
``KeyGrants`` holds a key's live grants for the evaluator; ``may_create_child`` and
``may_retire`` are the rules of "Granting CreateGrant permission" (create-grant-overview.html)
and "Retiring and revoking grants" (grant-delete.html). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from strongroom.authz.evaluate import RequestPrincipal
from strongroom.domain.enums import KeySpec, KeyUsage, SpecFamily
from strongroom.domain.models import Grant

# Every grant may name these, whatever the key (grant-concepts.html, "Grant operations").
_COMMON = frozenset({"CreateGrant", "DescribeKey", "RetireGrant"})

# Grant operations that carry an EncryptionContext parameter (with a symmetric encryption
# key): the operations an encryption-context constraint applies to.
CONTEXT_OPERATIONS = frozenset(
    {
        "Decrypt",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "ReEncryptFrom",
        "ReEncryptTo",
    }
)

# Key kind → the operations a grant on such a key may name.
GRANT_OPERATIONS: Mapping[str, frozenset[str]] = {
    "SYMMETRIC_ENCRYPTION": _COMMON | CONTEXT_OPERATIONS,
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
        symmetric = spec.family is SpecFamily.SYMMETRIC
        return "SYMMETRIC_ENCRYPTION" if symmetric else "ASYMMETRIC_ENCRYPTION"
    return usage.value


def invalid_grant_operations(
    usage: KeyUsage, spec: KeySpec, operations: Iterable[str]
) -> tuple[str, ...]:
    """The operations in ``operations`` that a grant on such a key cannot name, sorted."""
    allowed = GRANT_OPERATIONS[key_kind(usage, spec)]
    return tuple(sorted(set(operations) - allowed))


def takes_constraints(usage: KeyUsage, spec: KeySpec) -> bool:
    """Whether a grant on such a key may carry an encryption-context constraint: only on a
    symmetric encryption key, whose grant operations all take an encryption context or are
    DescribeKey, RetireGrant and CreateGrant ("You cannot use encryption context grant
    constraints in a grant for an asymmetric KMS key", create-grant-overview.html)."""
    return key_kind(usage, spec) == "SYMMETRIC_ENCRYPTION"


def grant_context(
    operation: str, symmetric: bool, encryption_context: Mapping[str, str] | None
) -> Mapping[str, str] | None:
    """The encryption context a grant's constraints judge a request by: the request's (empty
    when it sent none) for an operation that carries one on a symmetric encryption key; None,
    so that constraints do not apply, for anything else."""
    if symmetric and operation.removeprefix("kms:") in CONTEXT_OPERATIONS:
        return encryption_context or {}
    return None


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


def rule_of(grant: Grant) -> GrantRule:
    """The part of ``grant`` that authorization needs."""
    return GrantRule(
        grant.grantee_principal,
        frozenset(grant.operations),
        grant.encryption_context_equals,
        grant.encryption_context_subset,
    )


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


def at_least_as_strict(
    parent: GrantRule,
    encryption_context_equals: Mapping[str, str] | None,
    encryption_context_subset: Mapping[str, str] | None,
) -> bool:
    """Whether a child grant's constraint is as strict as ``parent``'s or stricter: a child of
    an ``EncryptionContextSubset`` parent keeps every parent pair (in a subset or an equals
    constraint); a child of an ``EncryptionContextEquals`` parent has the same equals."""
    equals, subset = _fold(encryption_context_equals), _fold(encryption_context_subset)
    if parent._equals is not None:
        return equals == parent._equals
    if parent._subset is not None:
        child = equals if equals is not None else subset
        return child is not None and all(child.get(k) == v for k, v in parent._subset.items())
    return True


def may_create_child(
    parent: GrantRule,
    operations: Iterable[str],
    encryption_context_equals: Mapping[str, str] | None,
    encryption_context_subset: Mapping[str, str] | None,
) -> bool:
    """Whether ``parent`` (a grant that allows CreateGrant) covers a new grant: only some or
    all of its operations, under a constraint at least as strict as its own."""
    return set(operations) <= parent.operations and at_least_as_strict(
        parent, encryption_context_equals, encryption_context_subset
    )


def may_retire(
    principal: RequestPrincipal,
    *,
    grantee_principal: str,
    operations: Iterable[str],
    retiring_principal: str | None,
) -> bool:
    """Whether the grant itself lets ``principal`` retire it: as its retiring principal, or as
    its grantee when it allows RetireGrant. (The account that owns the key or created the
    grant may retire it too, through its IAM policies: ``authz.decision``.)"""
    if retiring_principal is not None and retiring_principal in principal.identities:
        return True
    return "RetireGrant" in operations and grantee_principal in principal.identities


class KeyGrants:
    """A key's live grants, by grant id (what a grant token names) and by grantee (what a
    request needs): a request looks only at the grants of the identities it carries."""

    __slots__ = ("_by_grantee", "_by_id")

    def __init__(self, rules: Mapping[str, GrantRule]) -> None:
        self._by_id = dict(rules)
        by_grantee: dict[str, list[GrantRule]] = {}
        for rule in self._by_id.values():
            by_grantee.setdefault(rule.grantee_principal, []).append(rule)
        self._by_grantee = {k: tuple(v) for k, v in by_grantee.items()}

    def __contains__(self, grant_id: object) -> bool:
        return grant_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def of(self, principal: RequestPrincipal) -> list[GrantRule]:
        """The grants whose grantee is the caller (or, for a role session, its role)."""
        found: list[GrantRule] = []
        for identity in principal.identities:
            found.extend(self._by_grantee.get(identity, ()))
        return found

    def with_rules(self, extra: Mapping[str, GrantRule]) -> KeyGrants:
        """These grants and ``extra`` (grants named by grant tokens this process has not
        cached yet)."""
        return KeyGrants({**self._by_id, **extra})


NO_GRANTS = KeyGrants({})
"""The grants of a key that has none: one object shared by all such keys (KeyGrants never
changes once made)."""
