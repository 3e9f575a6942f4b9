"""The KMS authorization decision: key policy, identity policies and grants, evaluated together.

AWS KMS "Determining access to a KMS key"
(https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html), "Key
policies" (.../key-policies.html), "Allowing users in other accounts to use a KMS key"
(.../key-policy-modifying-external-accounts.html) and the IAM "Policy evaluation logic"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

1. Default deny.
2. An explicit Deny in the key policy or in an identity policy wins over every Allow
   (including a grant).
3. The key policy is the root of trust. A statement naming the caller (or ``*``) allows on its
   own within the key's account. A statement naming the caller's *account*
   (``arn:aws:iam::ACCOUNT:root``) delegates: the caller's identity policies must then allow
   too. Without such a statement, identity policies cannot allow (their Deny still counts).
4. A grant for the operation allows (the grant's own matching happens in the caller).
5. Across accounts, the key policy must name the caller or its account *and* the caller's
   identity policy must allow; only the KMS operations AWS permits across accounts can
   succeed.

``sts:AssumeRole`` is decided by the same rules, with the role's ARN as the resource and its
trust policy in the key policy's place (IAM "Policy evaluation logic", resource-based
policies; "Cross-account policy evaluation logic"): a trust policy naming the caller allows
within the role's account, one naming the caller's account root needs an identity policy too.

Pure: no I/O. ``Decision.message`` is AWS's AccessDeniedException text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import lru_cache

from strongroom.authz.conditions import ContextValue, Test
from strongroom.authz.policy import Candidate, Candidates, Effect, Policy, PrincipalSet, Statement
from strongroom.domain.errors import AccessDeniedException, MalformedPolicyDocumentException

# Operations a KMS key policy can open to another account: those documented "Cross-account
# use: Yes" in the KMS service model (botocore kms/2014-11-01; a unit test compares), with
# ReEncrypt split into its two IAM actions.
CROSS_ACCOUNT_ACTIONS: frozenset[str] = frozenset(
    f"kms:{name}".lower()
    for name in (
        "CreateGrant",
        "Decapsulate",
        "Decrypt",
        "DeriveSharedSecret",
        "DescribeKey",
        "Encapsulate",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GetKeyRotationStatus",
        "GetPublicKey",
        "ListGrants",
        "ReEncryptFrom",
        "ReEncryptTo",
        "RetireGrant",
        "RevokeGrant",
        "Sign",
        "Verify",
        "VerifyMac",
    )
)


class PrincipalKind(StrEnum):
    """What kind of identity made the request, with its ``aws:PrincipalType`` value."""

    ROOT = "Account"
    USER = "User"
    ROLE = "Role"  # a role named directly (rare for callers: roles act through sessions)
    ASSUMED_ROLE = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    SERVICE = "Service"


_IAM_ARN_RE = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):(?P<svc>iam|sts)::(?P<account>\d{12}):(?P<rest>.+)"
)
_KIND_BY_PREFIX: Mapping[tuple[str, str], PrincipalKind] = {
    ("iam", "root"): PrincipalKind.ROOT,
    ("iam", "user"): PrincipalKind.USER,
    ("iam", "role"): PrincipalKind.ROLE,
    ("sts", "assumed-role"): PrincipalKind.ASSUMED_ROLE,
    ("sts", "federated-user"): PrincipalKind.FEDERATED_USER,
}


@dataclass(frozen=True, slots=True)
class RequestPrincipal:
    """The caller as the evaluator sees it. ``tags`` are the principal's IAM tags.

    ``root_arn`` (its account's root), ``role_arn`` (for a role session
    ``arn:aws:sts::A:assumed-role/R/S``, the role ``arn:aws:iam::A:role/R``) and
    ``identities`` (the ARNs a Principal element can name it by) are derived once.
    """

    arn: str
    account: str
    kind: PrincipalKind
    tags: Mapping[str, str] = field(default_factory=dict)
    root_arn: str = field(init=False)
    role_arn: str | None = field(init=False)
    identities: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        role_arn: str | None = None
        if self.kind is PrincipalKind.ASSUMED_ROLE:
            role = self.arn.split(":assumed-role/", 1)[1].rsplit("/", 1)[0]
            role_arn = f"arn:aws:iam::{self.account}:role/{role}"
        object.__setattr__(self, "root_arn", f"arn:aws:iam::{self.account}:root")
        object.__setattr__(self, "role_arn", role_arn)
        identities = {self.arn} if role_arn is None else {self.arn, role_arn}
        object.__setattr__(self, "identities", frozenset(identities))

    @classmethod
    def from_arn(cls, arn: str, tags: Mapping[str, str] | None = None) -> RequestPrincipal:
        """Classify an IAM/STS principal ARN; raises ValueError for anything else."""
        m = _IAM_ARN_RE.fullmatch(arn)
        if m is None:
            raise ValueError(f"not an IAM principal ARN: {arn!r}")
        head = m["rest"].split("/", 1)[0]
        kind = _KIND_BY_PREFIX.get((m["svc"], head))
        if kind is None:
            raise ValueError(f"not an IAM principal ARN: {arn!r}")
        return cls(arn=arn, account=m["account"], kind=kind, tags=dict(tags or {}))


# The account of a KMS key or alias ARN, or of an IAM role ARN (sts:AssumeRole's resource).
_RESOURCE_ACCOUNT_RE = re.compile(r"arn:aws[a-z-]*:(?:kms:[a-z0-9-]*|iam:):(\d{12}):")


@lru_cache(maxsize=4096)
def _resource_account(resource: str) -> str | None:
    m = _RESOURCE_ACCOUNT_RE.match(resource)
    return m.group(1) if m else None


def _principal_keys(principal: RequestPrincipal, resource: str) -> dict[str, ContextValue]:
    keys: dict[str, ContextValue] = {
        "aws:principalarn": principal.role_arn or principal.arn,
        "aws:principalaccount": principal.account,
        "aws:principaltype": principal.kind.value,
        "kms:calleraccount": principal.account,
    }
    if principal.kind is PrincipalKind.USER:
        keys["aws:username"] = principal.arn.rsplit("/", 1)[1]
    for tag, value in principal.tags.items():
        keys[f"aws:principaltag/{tag.lower()}"] = value
    m = _RESOURCE_ACCOUNT_RE.match(resource)
    if m is not None:
        keys["aws:resourceaccount"] = m.group(1)
    return keys


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True)
class AuthzRequest:
    """One authorization question: may ``principal`` do ``action`` on ``resource``?

    ``action`` is the IAM action (``kms:Encrypt``); ``resource`` the key ARN, or ``*`` for
    operations on no key (CreateKey, ListKeys, GenerateRandom); ``context`` the condition
    keys of the request with lower-cased names (use ``AuthzRequest.create``).

    ``static``, when given, is the part of ``context`` that follows from the resource and
    the principal ARN alone (the same mapping for every request naming them; ``context``
    holds it unchanged): conditions that read only its keys are then evaluated once per
    (action, resource, principal) and policy, not per request.
    """

    action: str
    resource: str
    principal: RequestPrincipal
    context: Mapping[str, ContextValue]
    static: Mapping[str, ContextValue] | None = None
    # A hashable fingerprint of ``static`` (its items), computed once by whoever caches it;
    # derived here when not given. Memoized scans are keyed on it, so a principal whose tags
    # changed, or a key whose facts changed, never meets a scan made for the old ones.
    static_key: frozenset[tuple[str, ContextValue]] | None = None

    @classmethod
    def create(
        cls,
        action: str,
        resource: str,
        principal: RequestPrincipal,
        context: Mapping[str, ContextValue] | None = None,
    ) -> AuthzRequest:
        """Build a request whose context also holds the keys that follow from the principal
        (aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType, aws:PrincipalTag/<k>,
        aws:username, kms:CallerAccount, aws:ResourceAccount); explicit ``context`` entries
        win. Condition key names are case-insensitive, so they are lower-cased here."""
        merged = _principal_keys(principal, resource)
        merged.update({k.lower(): v for k, v in (context or {}).items()})
        return cls(action=action, resource=resource, principal=principal, context=merged)

    @property
    def resource_account(self) -> str | None:
        return _resource_account(self.resource)


class Reason(StrEnum):
    """Why a decision came out as it did."""

    KEY_POLICY = "allowed by the key policy"
    IDENTITY_POLICY = "allowed by an identity policy the key policy delegates to"
    GRANT = "allowed by a grant"
    ROOT = "allowed: the account root, for an operation on no key"
    EXPLICIT_DENY_KEY_POLICY = "explicit deny in the key policy"
    EXPLICIT_DENY_IDENTITY_POLICY = "explicit deny in an identity policy"
    NO_KEY_POLICY_ALLOW = "no key policy statement allows"
    NO_IDENTITY_POLICY_ALLOW = "no identity policy statement allows"
    NOT_CROSS_ACCOUNT = "the operation cannot be used across accounts"


# AWS's AccessDeniedException texts (IAM "Access denied error messages",
# https://docs.aws.amazon.com/IAM/latest/UserGuide/access_denied_message.html).
_DENIED = "User: {p} is not authorized to perform: {a} on resource: {r}"
_IMPLICIT = _DENIED + " because no {t} allows the {a} action"
_EXPLICIT = _DENIED + " with an explicit deny in {t}"
_MESSAGES: Mapping[Reason, tuple[str, str]] = {
    Reason.EXPLICIT_DENY_KEY_POLICY: (_EXPLICIT, "a resource-based policy"),
    Reason.EXPLICIT_DENY_IDENTITY_POLICY: (_EXPLICIT, "an identity-based policy"),
    Reason.NO_KEY_POLICY_ALLOW: (_IMPLICIT, "resource-based policy"),
    Reason.NO_IDENTITY_POLICY_ALLOW: (_IMPLICIT, "identity-based policy"),
    Reason.NOT_CROSS_ACCOUNT: (_IMPLICIT, "resource-based policy"),
}


# Not frozen: one is made per request, and a frozen dataclass's __init__ costs ~5x as much
# (object.__setattr__ per field). Nothing assigns to one after it is made.
@dataclass(slots=True)
class Decision:
    """The answer, why, and (when one decided it) the deciding statement."""

    allowed: bool
    reason: Reason
    request: AuthzRequest
    statement: Statement | None = None

    @property
    def message(self) -> str:
        """AWS's AccessDeniedException message for a denial; empty when allowed."""
        if self.allowed:
            return ""
        template, policy_type = _MESSAGES[self.reason]
        r = self.request
        return template.format(p=r.principal.arn, a=r.action, r=r.resource, t=policy_type)

    def raise_if_denied(self) -> None:
        """Raise AccessDeniedException with AWS's text when the request is denied."""
        if not self.allowed:
            raise AccessDeniedException(self.message)


class _Named(Enum):
    """How a Principal element relates to the caller."""

    NO = 0
    CALLER = 1  # names the caller itself (or everyone)
    ACCOUNT = 2  # names the caller's account root: delegation to identity policies


def _named(ps: PrincipalSet, p: RequestPrincipal) -> _Named:
    if ps.anyone:
        return _Named.CALLER
    if p.kind is PrincipalKind.SERVICE:
        return _Named.CALLER if p.arn in ps.services else _Named.NO
    if ps.aws & p.identities:
        return _Named.CALLER
    if p.root_arn in ps.aws:
        return _Named.ACCOUNT
    return _Named.NO


def _not_named(ps: PrincipalSet, p: RequestPrincipal) -> _Named:
    # IAM NotPrincipal: the caller is excluded only when every identity it carries is
    # listed: its ARN, the role of a session, and its account ("you must also include the
    # account ARN"). Otherwise the statement applies to it directly.
    if ps.anyone:
        return _Named.NO
    if p.kind is PrincipalKind.SERVICE:
        return _Named.NO if p.arn in ps.services else _Named.CALLER
    if p.identities <= ps.aws and p.root_arn in ps.aws:
        return _Named.NO
    return _Named.CALLER


def _principal_match(st: Statement, p: RequestPrincipal) -> _Named:
    if st.principal is not None:
        return _named(st.principal, p)
    if st.not_principal is not None:
        return _not_named(st.not_principal, p)
    return _Named.CALLER  # identity policy: it is the caller's own


@dataclass(slots=True)
class _Tally:
    deny: Statement | None = None
    direct: Statement | None = None
    delegated: Statement | None = None


def _statement_tests(
    st: Statement, variables: bool, static: Mapping[str, ContextValue] | None
) -> tuple[Test, ...] | None:
    """The tests of ``st``'s conditions that need the request; None when a condition that
    reads only ``static`` keys already fails."""
    tests: list[Test] = []
    for clause in st.ordered_conditions:
        test = clause.test if variables else clause.literal_test
        if static is not None and clause.referenced_keys <= static.keys():
            if not test(static):
                return None
        else:
            tests.append(test)
    return tuple(tests)


def _candidates(policy: Policy, request: AuthzRequest) -> Candidates:
    """The statements of ``policy`` whose action, principal, resource and static conditions
    match the request, each with whether it names the caller itself and the tests left to
    run; memoized on the policy per (action, resource, principal ARN, static context), with
    ``"*"`` for the resource when no statement's match depends on it (``any_resource``)."""
    principal, static = request.principal, request.static
    static_key = None
    if static is not None:
        static_key = request.static_key
        if static_key is None:
            static_key = frozenset(static.items())
    resource = "*" if policy.any_resource else request.resource
    entry = (request.action, resource, principal.arn, static_key)
    scans = policy.scans
    found = scans.get(entry)
    if found is not None:
        try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined
            scans.move_to_end(entry)
        except KeyError:
            pass
    else:
        matched: list[Candidate] = []
        for st in policy.statements:
            if not st.matches_action(request.action):
                continue
            named = _principal_match(st, principal)
            if named is _Named.NO or not st.matches_resource(request.resource):
                continue
            tests = _statement_tests(st, policy.variables, static)
            if tests is not None:
                matched.append((st, named is _Named.CALLER, tests))
        found = tuple(matched)
        scans.keep(entry, found)
    return found


def _holds(tests: tuple[Test, ...], context: Mapping[str, ContextValue]) -> bool:
    # A loop, not all(<generator>): this runs for every candidate statement of a request.
    for test in tests:  # noqa: SIM110
        if not test(context):
            return False
    return True


def _scan(policy: Policy, request: AuthzRequest) -> _Tally:
    tally = _Tally()
    context = request.context
    for st, direct, tests in _candidates(policy, request):
        if tests and not _holds(tests, context):
            continue
        if st.effect is Effect.DENY:
            # A Deny naming an account applies to every principal of that account; the
            # first applicable Deny decides, so the scan stops there.
            tally.deny = st
            return tally
        if direct:
            tally.direct = tally.direct or st
        else:
            tally.delegated = tally.delegated or st
    return tally


def _identity_scan(policies: Sequence[Policy], request: AuthzRequest) -> _Tally:
    tally = _Tally()
    for policy in policies:
        # Identity statements have no principal element: each applies to the caller.
        for st, _, tests in _candidates(policy, request):
            if tests and not _holds(tests, request.context):
                continue
            if st.effect is Effect.DENY:
                tally.deny = st
                return tally
            tally.direct = tally.direct or st
    return tally


def reads_request(
    request: AuthzRequest, key_policy: Policy | None, identity_policies: Sequence[Policy] = ()
) -> bool:
    """Whether ``evaluate``'s decision on ``request`` may depend on more than its action,
    resource, principal, static context and policies: True when there is no static context,
    or when a statement that matches it has a condition left to test against the request's
    own keys (time, source IP, encryption context, tags, the operation's keys, ...). When
    False, every request with the same action, resource, principal, static context and
    policies gets the same decision (``Authorizer`` keeps it). Cheap after ``evaluate``:
    the statements' scans are memoized."""
    if request.static is None:
        return True
    policies = [] if key_policy is None else [key_policy]
    if request.principal.kind is not PrincipalKind.ROOT:  # the root's IAM policies: unread
        policies.extend(identity_policies)
    for policy in policies:
        for _, _, tests in _candidates(policy, request):
            if tests:
                return True
    return False


def evaluate(
    request: AuthzRequest,
    key_policy: Policy | None,
    identity_policies: Sequence[Policy] = (),
    grants_allow: bool = False,
) -> Decision:
    """Decide ``request`` as AWS KMS would.

    ``key_policy`` is the key's policy, or None for operations on no key (CreateKey,
    ListKeys, GenerateRandom): then identity policies alone decide (the account root is
    allowed). ``identity_policies`` are the caller's own (user or role) policies.
    ``grants_allow`` says a live grant on the key gives the caller this operation, its
    constraints already checked. The result's ``message`` is AWS's AccessDeniedException text.
    """
    principal = request.principal
    key_account = request.resource_account
    cross_account = key_account is not None and key_account != principal.account
    is_root = principal.kind is PrincipalKind.ROOT
    key = _scan(key_policy, request) if key_policy is not None else _Tally()
    identity = _identity_scan(identity_policies, request) if not is_root else _Tally()

    def decide(allowed: bool, reason: Reason, st: Statement | None = None) -> Decision:
        return Decision(allowed, reason, request, st)

    if key.deny is not None:
        return decide(False, Reason.EXPLICIT_DENY_KEY_POLICY, key.deny)
    if identity.deny is not None:
        return decide(False, Reason.EXPLICIT_DENY_IDENTITY_POLICY, identity.deny)
    action = request.action.lower()
    if cross_account and action.startswith("kms:") and action not in CROSS_ACCOUNT_ACTIONS:
        return decide(False, Reason.NOT_CROSS_ACCOUNT)
    if grants_allow:
        return decide(True, Reason.GRANT)
    # The root of the caller's own account needs no identity policy to act in it.
    identity_allows = identity.direct is not None or is_root
    if key_policy is None:
        if is_root:
            return decide(True, Reason.ROOT)
        if identity.direct is not None:
            return decide(True, Reason.IDENTITY_POLICY, identity.direct)
        return decide(False, Reason.NO_IDENTITY_POLICY_ALLOW)
    trusted = key.direct or key.delegated
    if trusted is None:
        return decide(False, Reason.NO_KEY_POLICY_ALLOW)
    if key.direct is not None and not cross_account:
        return decide(True, Reason.KEY_POLICY, key.direct)
    if not identity_allows:
        return decide(False, Reason.NO_IDENTITY_POLICY_ALLOW)
    if identity.direct is not None:
        return decide(True, Reason.IDENTITY_POLICY, identity.direct)
    return decide(True, Reason.KEY_POLICY, trusted)


# AWS's text (CreateKey/PutKeyPolicy, recorded in many client issue reports).
LOCKOUT_MESSAGE = "The new key policy will not allow you to update the key policy in the future."


def check_lockout(
    new_policy: Policy,
    key_arn: str,
    principal: RequestPrincipal,
    identity_policies: Sequence[Policy] = (),
    context: Mapping[str, ContextValue] | None = None,
) -> None:
    """The policy lockout safety check of CreateKey and PutKeyPolicy.

    Raises MalformedPolicyDocumentException with AWS's text unless ``principal`` (the
    caller) could call PutKeyPolicy on ``key_arn`` under ``new_policy`` with its identity
    policies. Callers skip it when ``BypassPolicyLockoutSafetyCheck`` is true
    (``CreateKeyRequest.BypassPolicyLockoutSafetyCheck`` doc).
    """
    request = AuthzRequest.create("kms:PutKeyPolicy", key_arn, principal, context)
    if not evaluate(request, new_policy, identity_policies).allowed:
        raise MalformedPolicyDocumentException(LOCKOUT_MESSAGE)
