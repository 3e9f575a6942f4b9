"""The one authorization call every operation makes.

``authorize`` asks the evaluator (``authz.evaluate``) whether the caller may do
``kms:<action>`` on a key, with the key's policy, the caller's identity policies and the
request's condition keys, as AWS KMS decides ("Determining access to a KMS key",
https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html).

Policies are parsed once per (owner ARN, policy text) and kept: the hot path pays a dict
lookup, never ``parse_policy``. A changed policy has another text, so it is parsed anew.

A key's grants (``authz.grants.KeyGrants``, which the services cache with the key) add
permissions: a grant for the operation whose constraints admit the request's encryption
context allows it, unless a policy denies explicitly. RetireGrant follows its own rule
(``authorize_retire``): the grant, not the key policy, says who may retire it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from strongroom.authz.conditions import ContextValue
from strongroom.authz.evaluate import (
    AuthzRequest,
    Decision,
    Reason,
    RequestPrincipal,
    check_lockout,
    evaluate,
)
from strongroom.authz.grants import GrantRule, KeyGrants, grant_context, grants_allow, may_retire
from strongroom.authz.policy import Policy, PolicyKind, parse_policy
from strongroom.domain.enums import KeySpec
from strongroom.domain.models import Caller, Grant, Key

_MAX_ENTRIES = 10_000


class PolicyCache:
    """Parsed policies by (owner ARN, kind, text); bounded, thread-safe enough for dicts."""

    def __init__(self, max_entries: int = _MAX_ENTRIES) -> None:
        self._policies: dict[tuple[str, PolicyKind, str], Policy] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, owner: str, kind: PolicyKind, text: str) -> Policy:
        """The parsed policy; MalformedPolicyDocumentException if ``text`` is not one."""
        entry = (owner, kind, text)
        policy = self._policies.get(entry)
        if policy is None:
            policy = parse_policy(text, kind)
            with self._lock:
                if len(self._policies) >= self._max:
                    self._policies.clear()
                self._policies[entry] = policy
        return policy


POLICIES = PolicyCache()
_PRINCIPALS: dict[tuple[str, tuple[tuple[str, str], ...]], RequestPrincipal] = {}


def request_principal(caller: Caller) -> RequestPrincipal:
    """The caller as the evaluator sees it, with its IAM tags (cached per ARN and tags)."""
    entry = (caller.principal.arn, caller.tags)
    found = _PRINCIPALS.get(entry)
    if found is None:
        if len(_PRINCIPALS) >= _MAX_ENTRIES:
            _PRINCIPALS.clear()
        found = _PRINCIPALS[entry] = RequestPrincipal.from_arn(entry[0], dict(caller.tags))
    return found


def identity_policies(caller: Caller) -> tuple[Policy, ...]:
    """The caller's inline IAM policies, parsed (a stored policy was valid when stored)."""
    if not caller.identity_policies:
        return ()
    entry = (caller.principal.arn, caller.identity_policies)
    found = _IDENTITY.get(entry)
    if found is None:
        if len(_IDENTITY) >= _MAX_ENTRIES:
            _IDENTITY.clear()
        arn = caller.principal.arn
        found = tuple(POLICIES.get(arn, PolicyKind.IDENTITY, t) for t in caller.identity_policies)
        _IDENTITY[entry] = found
    return found


_clock: list[tuple[int, str]] = [(0, "")]


def _current_time() -> str:
    """aws:CurrentTime to the second, formatted once per second."""
    now = time.time()
    second, text = _clock[0]
    if int(now) != second:
        second = int(now)
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _clock[0] = (second, text)
    return text


_IDENTITY: dict[tuple[str, tuple[str, ...]], tuple[Policy, ...]] = {}
_BASE_CONTEXT: dict[tuple[str, tuple[tuple[str, str], ...], str], Mapping[str, ContextValue]] = {}


def _base_context(
    caller: Caller, resource: str
) -> tuple[RequestPrincipal, dict[str, ContextValue]]:
    """The evaluator's principal, and a copy of the condition keys that follow from it and
    the resource alone (``AuthzRequest.create``'s: aws:PrincipalTag/<k> among them),
    computed once per principal, tags and resource."""
    principal = request_principal(caller)
    entry = (caller.principal.arn, caller.tags, resource)
    found = _BASE_CONTEXT.get(entry)
    if found is None:
        if len(_BASE_CONTEXT) >= _MAX_ENTRIES:
            _BASE_CONTEXT.clear()
        found = _BASE_CONTEXT[entry] = AuthzRequest.create("", resource, principal).context
    return principal, dict(found)


def request_context(
    caller: Caller,
    key: Key | None,
    *,
    encryption_context: Mapping[str, str] | None = None,
    request_alias: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
) -> dict[str, ContextValue]:
    """The condition keys of a request beyond those of its principal (lower-cased names):
    aws:SourceIp, aws:CurrentTime, aws:SecureTransport (plain HTTP: false),
    kms:EncryptionContext:<k> and kms:EncryptionContextKeys, kms:KeySpec, kms:KeyUsage,
    kms:KeyOrigin, kms:MultiRegion, kms:MultiRegionKeyType (multi-Region keys only) and
    kms:RequestAlias.

    kms:ViaService is never in the context: AWS sets it only on requests that an AWS
    service integrated with KMS makes on a principal's behalf, and no such service calls
    Strongroom. So a direct call never satisfies a ``kms:ViaService`` condition, and the
    AWS managed keys (``authz.managed_policy``), usable only through their service, refuse
    direct use with AccessDeniedException, as they do in AWS."""
    context: dict[str, ContextValue] = {
        "aws:sourceip": caller.source_ip,
        "aws:currenttime": _current_time(),
        "aws:securetransport": "false",
        "aws:requestedregion": caller.region,
    }
    if key is not None:  # StrEnum members are their AWS strings
        context["kms:keyspec"] = key.key_spec
        context["kms:keyusage"] = key.key_usage
        context["kms:keyorigin"] = key.origin
        context["kms:multiregion"] = "true" if key.multi_region else "false"
        if key.multi_region_type is not None:
            context["kms:multiregionkeytype"] = key.multi_region_type
    if encryption_context:
        # The key of kms:EncryptionContext:<k> is case-insensitive like every condition key
        # name; the values stay as sent (AWS KMS "kms:EncryptionContext:context-key").
        for k, v in encryption_context.items():
            context[f"kms:encryptioncontext:{k.lower()}"] = v
        context["kms:encryptioncontextkeys"] = tuple(encryption_context)
    if request_alias is not None:
        context["kms:requestalias"] = request_alias
    if extra:
        context.update({k.lower(): v for k, v in extra.items()})
    return context


def decide(
    caller: Caller,
    action: str,
    key: Key | None = None,
    *,
    encryption_context: Mapping[str, str] | None = None,
    request_alias: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
    grants: KeyGrants | None = None,
    grant_filter: Callable[[GrantRule], bool] | None = None,
) -> Decision:
    """The evaluator's decision on ``kms:<action>`` by ``caller`` on ``key`` (``*`` if None).

    ``grants`` are the key's live grants; only those ``grant_filter`` keeps (all when None)
    may allow, each within its encryption-context constraint."""
    resource = key.arn if key is not None else "*"
    # AuthzRequest.create's context, with the principal's part computed once per pair.
    principal, context = _base_context(caller, resource)
    granted = False
    if grants and key is not None:
        candidates = grants.of(principal)
        if grant_filter is not None:
            candidates = [g for g in candidates if grant_filter(g)]
        symmetric = key.key_spec is KeySpec.SYMMETRIC_DEFAULT
        context_for_grants = grant_context(action, symmetric, encryption_context)
        granted = grants_allow(candidates, principal, action, context_for_grants)
    context.update(
        request_context(
            caller,
            key,
            encryption_context=encryption_context,
            request_alias=request_alias,
            extra=extra,
        )
    )
    request = AuthzRequest(f"kms:{action}", resource, principal, context)
    key_policy = None if key is None else POLICIES.get(key.arn, PolicyKind.KEY, key.policy)
    return evaluate(request, key_policy, identity_policies(caller), granted)


def authorize(
    caller: Caller,
    action: str,
    key: Key | None = None,
    *,
    encryption_context: Mapping[str, str] | None = None,
    request_alias: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
    grants: KeyGrants | None = None,
    grant_filter: Callable[[GrantRule], bool] | None = None,
) -> None:
    """Allow ``kms:<action>`` on ``key`` (or on ``*`` when None), by policy or by one of
    ``grants``, or raise AccessDeniedException with AWS's text."""
    decide(
        caller,
        action,
        key,
        encryption_context=encryption_context,
        request_alias=request_alias,
        extra=extra,
        grants=grants,
        grant_filter=grant_filter,
    ).raise_if_denied()


def authorize_identity(caller: Caller, action: str, resource: str) -> None:
    """Allow ``kms:<action>`` on ``resource`` (a principal ARN) by the caller's identity
    policies alone (the account root needs none), or raise AccessDeniedException with AWS's
    text: for operations authorized in the caller's account only, such as
    ListRetirableGrants ("You must specify a principal in your Amazon Web Services account")."""
    decision = _identity_decision(caller, action, resource)
    if decision.allowed and resource.split(":")[4:5] != [caller.principal.account]:
        decision = Decision(False, Reason.NOT_CROSS_ACCOUNT, decision.request)
    decision.raise_if_denied()


def _identity_decision(caller: Caller, action: str, resource: str) -> Decision:
    principal, context = _base_context(caller, resource)
    context.update(request_context(caller, None))
    request = AuthzRequest(f"kms:{action}", resource, principal, context)
    return evaluate(request, None, identity_policies(caller))


def authorize_retire(caller: Caller, key: Key, grant: Grant | None) -> None:
    """RetireGrant as "Retiring and revoking grants" (grant-delete.html) has it: the grant's
    retiring principal, or its grantee when it allows RetireGrant, may retire it; so may the
    account that owns the key or created the grant (its root, and its users and roles whose
    IAM policies allow kms:RetireGrant). kms:RetireGrant in a key policy has no effect; a Deny
    in an IAM policy wins over all of these. ``grant`` is None when there is no such grant:
    then only the key's account can be told so. Raises AccessDeniedException with AWS's text.
    """
    iam = _identity_decision(caller, "RetireGrant", key.arn)
    if iam.reason is Reason.EXPLICIT_DENY_IDENTITY_POLICY:
        iam.raise_if_denied()
    principal = request_principal(caller)
    if grant is not None and may_retire(
        principal,
        grantee_principal=grant.grantee_principal,
        operations=grant.operations,
        retiring_principal=grant.retiring_principal,
    ):
        return
    accounts = {key.account} if grant is None else {key.account, _account(grant.issuing_account)}
    if principal.account in accounts and iam.allowed:
        return
    if grant is not None and grant.retiring_principal == principal.root_arn and iam.allowed:
        return  # the retiring account delegates through its IAM policies
    Decision(False, Reason.NO_IDENTITY_POLICY_ALLOW, iam.request).raise_if_denied()


def _account(root_arn: str) -> str:
    """The account id of ``arn:aws:iam::<account>:root``."""
    return root_arn.split(":")[4]


def check_caller_lockout(caller: Caller, policy: Policy, key_arn: str) -> None:
    """The policy lockout safety check for ``caller`` (CreateKey, PutKeyPolicy): raise
    MalformedPolicyDocumentException with AWS's text unless ``policy`` lets the caller call
    PutKeyPolicy on ``key_arn`` afterwards."""
    check_lockout(
        policy,
        key_arn,
        request_principal(caller),
        identity_policies(caller),
        request_context(caller, None),
    )


def authorize_assume_role(
    caller: Caller, role_arn: str, trust_policy: str, extra: Mapping[str, ContextValue]
) -> None:
    """Allow ``sts:AssumeRole`` of ``role_arn`` under its ``trust_policy`` (JSON) and the
    caller's identity policies, or raise AccessDeniedException with AWS's text. ``extra``
    holds the request's sts: condition keys (sts:RoleSessionName, sts:ExternalId)."""
    principal, context = _base_context(caller, role_arn)
    context.update(request_context(caller, None, extra=extra))
    request = AuthzRequest("sts:AssumeRole", role_arn, principal, context)
    policy = POLICIES.get(role_arn, PolicyKind.TRUST, trust_policy)
    evaluate(request, policy, identity_policies(caller)).raise_if_denied()
