"""The one authorization call every operation makes.

``authorize`` asks the evaluator (``authz.evaluate``) whether the caller may do
``kms:<action>`` on a key, with the key's policy, the caller's identity policies and the
request's condition keys, as AWS KMS decides ("Determining access to a KMS key",
https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html).

Policies are parsed once per (kind, policy text) and kept, shared by every key, user or role
whose document is that text: the hot path pays a dict lookup, never ``parse_policy``. A
changed policy has another text, so it is parsed anew; the others keep theirs.

A key's grants (``authz.grants.KeyGrants``, which the services cache with the key) add
permissions: a grant for the operation whose constraints admit the request's encryption
context allows it, unless a policy denies explicitly. RetireGrant follows its own rule
(``authorize_retire``): the grant, not the key policy, says who may retire it.

The request context is built in two parts. What follows from the principal and the key
alone (the principal's keys, the key's kms:KeySpec, kms:KeyUsage, ...) is computed once per
(principal, key) and handed to the evaluator as ``AuthzRequest.static``, so conditions on it
are decided once per (action, resource, principal) and policy; the request's own keys
(aws:SourceIp, aws:CurrentTime, the encryption context, the operation's parameters) are
added per request. The key's tags and aliases are read only when a policy asks for them.

Everything kept between requests (parsed policies, principals, the static contexts) lives in
an ``Authorizer``, which the runtime owns (``services.core.Core.authz``) with the clock that
gives aws:CurrentTime and aws:EpochTime; nothing is kept at module level.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from strongroom.authz.conditions import ContextValue
from strongroom.authz.context_keys import RESOURCE_ALIASES, RESOURCE_TAG, key_context
from strongroom.authz.evaluate import (
    AuthzRequest,
    Decision,
    Reason,
    RequestPrincipal,
    check_lockout,
    evaluate,
    reads_request,
)
from strongroom.authz.grants import GrantRule, KeyGrants, grant_context, grants_allow, may_retire
from strongroom.authz.policy import Policy, PolicyKind, parse_policy
from strongroom.domain.enums import SpecFamily
from strongroom.domain.lru import LruDict
from strongroom.domain.models import Caller, Grant, Key

_MAX_ENTRIES = 10_000


class PolicyCache:
    """Parsed policies by (kind, text), shared by every owner whose document is the same text
    (100,000 keys with their account's default key policy hold one parsed policy); at most
    ``max_entries`` distinct documents, the least recently used going first."""

    def __init__(self, max_entries: int = _MAX_ENTRIES) -> None:
        self._policies: LruDict[tuple[PolicyKind, str], Policy] = LruDict(max_entries)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._policies)

    def get(self, kind: PolicyKind, text: str) -> Policy:
        """The parsed policy; MalformedPolicyDocumentException if ``text`` is not one. The
        policy does not depend on whose it is: a Policy is immutable but for its memo of
        scans, which is keyed on the resource and principal it was asked about."""
        entry = (kind, text)
        policies = self._policies
        policy = policies.get(entry)
        if policy is not None:
            try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined
                policies.move_to_end(entry)
            except KeyError:
                pass
            return policy
        policy = parse_policy(text, kind)
        with self._lock:
            found = policies.get(entry)
            if found is not None:  # parsed meanwhile by another thread: share that one
                return found
            policies.keep(entry, policy)
        return policy


class ResourceFacts(Protocol):
    """What a policy may ask about a key beyond its record: its tags (aws:ResourceTag/<k>)
    and the names of the aliases that point at it (kms:ResourceAliases). Read only when a
    policy of the request has a condition on them."""

    def tags(self) -> Mapping[str, str]: ...

    def aliases(self) -> tuple[str, ...]: ...


def _add_request_keys(
    context: dict[str, ContextValue],
    caller: Caller,
    now: tuple[str, str],
    encryption_context: Mapping[str, str] | None,
    request_alias: str | None,
    extra: Mapping[str, ContextValue] | None,
) -> bool:
    """Add the request's own keys to ``context`` (``now``: aws:CurrentTime, aws:EpochTime);
    True when ``extra`` replaced a key that was already there (then what was computed from it
    beforehand no longer holds)."""
    context["aws:sourceip"] = caller.source_ip
    context["aws:currenttime"], context["aws:epochtime"] = now
    context["aws:requestedregion"] = caller.region
    if encryption_context:
        # The key of kms:EncryptionContext:<k> is case-insensitive like every condition key
        # name; the values stay as sent (AWS KMS "kms:EncryptionContext:context-key").
        for k, v in encryption_context.items():
            context["kms:encryptioncontext:" + k.lower()] = v
        context["kms:encryptioncontextkeys"] = tuple(encryption_context)
    if request_alias is not None:
        context["kms:requestalias"] = request_alias
    replaced = False
    if extra:
        for name, value in extra.items():
            lowered = name.lower()
            replaced = replaced or lowered in context
            context[lowered] = value
    return replaced


def _add_resource_keys(
    context: dict[str, ContextValue], facts: ResourceFacts, policies: Iterable[Policy]
) -> None:
    # Tags and aliases change, and reading them may cost a query: only when a condition
    # asks (AWS KMS "kms:ResourceAliases"; IAM "aws:ResourceTag/tag-key").
    tags = aliases = False
    for policy in policies:
        tags = tags or policy.reads(RESOURCE_TAG)
        aliases = aliases or policy.reads(RESOURCE_ALIASES)
    if tags:
        for k, v in facts.tags().items():
            context[RESOURCE_TAG + k.lower()] = v
    if aliases:
        context[RESOURCE_ALIASES] = facts.aliases()


# principal ARN, principal tags, and the resource's facts: "*", or a key's account and what
# ``key_context`` reads (spec, usage, origin, multi-Region, multi-Region type)
_BaseEntry = tuple[str, tuple[tuple[str, str], ...], tuple[object, ...]]
_Base = tuple[dict[str, ContextValue], frozenset[tuple[str, ContextValue]]]
_NO_KEY: tuple[object, ...] = ("*",)
# action, key ARN, principal ARN (a role session's own), the static context's fingerprint
# (the principal's keys and tags, the key's facts), the key policy's text and the caller's
# identity policies' texts
_DecisionEntry = tuple[str, str, str, frozenset[tuple[str, ContextValue]], str, tuple[str, ...]]


def _overlaps(extra: Mapping[str, ContextValue], base: Mapping[str, ContextValue]) -> bool:
    """Whether an operation's condition key replaces one of the static context."""
    for name in extra:  # noqa: SIM110 (a loop, not any(<generator>): most requests pass here)
        if name.lower() in base:
            return True
    return False


def _key_facts(key: Key) -> tuple[object, ...]:
    """What the static condition keys of ``key`` follow from: aws:ResourceAccount and
    ``key_context``'s keys (a unit test checks that keys with equal facts have equal
    contexts). Every key with the same facts shares one static context."""
    # primary_region and region stand for multi_region_type (a property: slower to read).
    return (
        key.account,
        key.key_spec,
        key.key_usage,
        key.origin,
        key.multi_region,
        key.primary_region,
        key.region,
    )


class Authorizer:
    """The authorization decisions of one process, with what they keep between requests:
    parsed policies, the principals as the evaluator sees them, each principal's parsed
    identity policies and the static part of each (principal, key facts) context. Every map
    holds at most ``max_entries`` (10,000) entries, the least recently used going first;
    keys share their parsed policy when their documents are the same text and their static
    context when their facts are the same (``_key_facts``), so the maps grow with the
    distinct policies and principals, not with the keys. ``clock`` gives aws:CurrentTime and
    aws:EpochTime (None: the system clock, read with ``time.time``, the cheapest read of it).

    Only ``services.access`` calls it (an import-linter contract says so): that seam builds
    the whole request context (grants, the key's tags and aliases, the operation's keys)."""

    def __init__(
        self, clock: Callable[[], datetime] | None = None, max_entries: int = _MAX_ENTRIES
    ) -> None:
        self.policies = PolicyCache(max_entries)
        self._clock = clock
        self._principals: LruDict[tuple[str, tuple[tuple[str, str], ...]], RequestPrincipal] = (
            LruDict(max_entries)
        )
        self._identity: LruDict[tuple[str, tuple[str, ...]], tuple[Policy, ...]] = LruDict(
            max_entries
        )
        self._base: LruDict[_BaseEntry, _Base] = LruDict(max_entries)
        self._decisions: LruDict[_DecisionEntry, Decision] = LruDict(max_entries)
        self._now: tuple[int, tuple[str, str]] = (-1, ("", ""))

    def sizes(self) -> dict[str, int]:
        """The number of entries of each map (for benchmarks and tests)."""
        return {
            "policies": len(self.policies),
            "principals": len(self._principals),
            "identity_policies": len(self._identity),
            "static_contexts": len(self._base),
            "decisions": len(self._decisions),
        }

    # -- what is kept --------------------------------------------------------------------
    def request_principal(self, caller: Caller) -> RequestPrincipal:
        """The caller as the evaluator sees it, with its IAM tags (kept per ARN and tags)."""
        entry = (caller.principal.arn, caller.tags)
        principals = self._principals
        found = principals.get(entry)
        if found is not None:
            try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every request
                principals.move_to_end(entry)
            except KeyError:
                pass
            return found
        found = RequestPrincipal.from_arn(entry[0], dict(caller.tags))
        principals.keep(entry, found)
        return found

    def identity_policies(self, caller: Caller) -> tuple[Policy, ...]:
        """The caller's inline IAM policies, parsed (a stored policy was valid when stored)."""
        if not caller.identity_policies:
            return ()
        entry = (caller.principal.arn, caller.identity_policies)
        found = self._identity.hit(entry)
        if found is None:
            texts = caller.identity_policies
            found = tuple(self.policies.get(PolicyKind.IDENTITY, t) for t in texts)
            self._identity.keep(entry, found)
        return found

    def _times(self) -> tuple[str, str]:
        """aws:CurrentTime and aws:EpochTime to the second, formatted once per second."""
        second = int(time.time() if self._clock is None else self._clock().timestamp())
        if second != self._now[0]:
            moment = datetime.fromtimestamp(second, UTC)
            self._now = (second, (moment.strftime("%Y-%m-%dT%H:%M:%SZ"), str(second)))
        return self._now[1]

    def _base_context(self, caller: Caller, principal: RequestPrincipal, key: Key | None) -> _Base:
        """The condition keys that follow from the principal (its tags included) and the
        resource alone (``AuthzRequest.create``'s, the key's, aws:SecureTransport), computed
        once per (principal, tags, key facts), with their fingerprint for the evaluator's
        memo. A key's facts never change (spec, usage, origin) but for a multi-Region key's
        type, which changes with its primary Region and is one of the facts."""
        entry = (principal.arn, caller.tags, _NO_KEY if key is None else _key_facts(key))
        base = self._base
        found = base.get(entry)
        if found is not None:
            try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every request
                base.move_to_end(entry)
            except KeyError:
                pass
        else:
            resource = "*" if key is None else key.arn
            context = dict(AuthzRequest.create("", resource, principal).context)
            context["aws:securetransport"] = "false"  # plain HTTP
            if key is not None:
                context.update(key_context(key))
            found = (context, frozenset(context.items()))
            base.keep(entry, found)
        return found

    def request_context(
        self,
        caller: Caller,
        key: Key | None,
        *,
        encryption_context: Mapping[str, str] | None = None,
        request_alias: str | None = None,
        extra: Mapping[str, ContextValue] | None = None,
    ) -> dict[str, ContextValue]:
        """The condition keys of a request beyond those of its principal (lower-cased names):
        aws:SourceIp, aws:CurrentTime, aws:EpochTime, aws:SecureTransport (plain HTTP: false),
        aws:RequestedRegion, the key's (``key_context``), kms:EncryptionContext:<k> and
        kms:EncryptionContextKeys, kms:RequestAlias, and the operation's own (``extra``).

        kms:ViaService is in the context only when ``extra`` holds it: AWS sets it only on
        requests that an AWS service integrated with KMS makes on a principal's behalf, and
        ``services.access`` adds it for the one such service of this server (Parameter
        Store). So a direct call never satisfies a ``kms:ViaService`` condition, and the
        AWS managed keys (``authz.managed_policy``), usable only through their service,
        refuse direct use with AccessDeniedException, as they do in AWS."""
        context: dict[str, ContextValue] = {"aws:securetransport": "false"}
        if key is not None:
            context.update(key_context(key))
        _add_request_keys(context, caller, self._times(), encryption_context, request_alias, extra)
        return context

    # -- decisions -----------------------------------------------------------------------
    def decide(
        self,
        caller: Caller,
        action: str,
        key: Key | None = None,
        *,
        encryption_context: Mapping[str, str] | None = None,
        request_alias: str | None = None,
        extra: Mapping[str, ContextValue] | None = None,
        grants: KeyGrants | None = None,
        grant_filter: Callable[[GrantRule], bool] | None = None,
        resource: ResourceFacts | None = None,
    ) -> Decision:
        """The evaluator's decision on ``kms:<action>`` by ``caller`` on ``key`` (``*`` if
        None).

        ``extra`` carries the operation's own condition keys (request parameters such as
        kms:SigningAlgorithm); one that names a key of the principal or of the key replaces
        it (and conditions are then all decided per request). ``resource`` gives the key's
        tags and aliases, read only when a policy asks. ``grants`` are the key's live grants;
        only those ``grant_filter`` keeps (all when None) may allow, each within its
        encryption-context constraint."""
        principal = self.request_principal(caller)
        base, fingerprint = self._base_context(caller, principal, key)
        # A decision that follows from the action, key, principal, static context and
        # policies alone (``reads_request``) is kept and given again without building the
        # request's context. Not when grants may allow (their constraints read the request)
        # nor when an operation's key replaces a static one.
        entry: _DecisionEntry | None = None
        if key is not None and not grants and not (extra and _overlaps(extra, base)):
            entry = (
                action,
                key.arn,
                principal.arn,
                fingerprint,
                key.policy,
                caller.identity_policies,
            )
            decisions = self._decisions
            kept = decisions.get(entry)
            if kept is not None:
                try:  # noqa: SIM105 (suppress() costs more) LruDict.hit, inlined: every request
                    decisions.move_to_end(entry)
                except KeyError:
                    pass
                return kept
        static: Mapping[str, ContextValue] | None = base
        context = base.copy()
        now = self._times()
        if _add_request_keys(context, caller, now, encryption_context, request_alias, extra):
            static = None  # the operation named a key of the principal or the key itself
        identity = self.identity_policies(caller)
        key_policy = None
        granted = False
        if key is not None:
            key_policy = self.policies.get(PolicyKind.KEY, key.policy)
            if resource is not None:
                _add_resource_keys(context, resource, (key_policy, *identity))
            if grants:
                candidates = grants.of(principal)
                if grant_filter is not None:
                    candidates = [g for g in candidates if grant_filter(g)]
                symmetric = key.key_spec.family is SpecFamily.SYMMETRIC
                context_for_grants = grant_context(action, symmetric, encryption_context)
                granted = grants_allow(candidates, principal, action, context_for_grants)
        arn = "*" if key is None else key.arn
        request = AuthzRequest(f"kms:{action}", arn, principal, context, static, fingerprint)
        decision = evaluate(request, key_policy, identity, granted)
        if entry is not None and not reads_request(request, key_policy, identity):
            # Kept with its static context only: this request's own keys (time, source IP,
            # encryption context) are not what it followed from, and need not be held.
            lean = AuthzRequest(request.action, arn, principal, base, base, fingerprint)
            self._decisions.keep(
                entry, Decision(decision.allowed, decision.reason, lean, decision.statement)
            )
        return decision

    def authorize(
        self,
        caller: Caller,
        action: str,
        key: Key | None = None,
        *,
        encryption_context: Mapping[str, str] | None = None,
        request_alias: str | None = None,
        extra: Mapping[str, ContextValue] | None = None,
        grants: KeyGrants | None = None,
        grant_filter: Callable[[GrantRule], bool] | None = None,
        resource: ResourceFacts | None = None,
    ) -> None:
        """Allow ``kms:<action>`` on ``key`` (or on ``*`` when None), by policy or by one of
        ``grants``, or raise AccessDeniedException with AWS's text (arguments as
        ``decide``)."""
        self.decide(
            caller,
            action,
            key,
            encryption_context=encryption_context,
            request_alias=request_alias,
            extra=extra,
            grants=grants,
            grant_filter=grant_filter,
            resource=resource,
        ).raise_if_denied()

    def authorize_identity(
        self,
        caller: Caller,
        action: str,
        resource: str,
        *,
        extra: Mapping[str, ContextValue] | None = None,
        service: str = "kms",
    ) -> None:
        """Allow ``<service>:<action>`` on ``resource`` (a principal ARN, the ARN of a key not
        made yet, or a Parameter Store parameter's ARN with ``service`` "ssm") by the caller's
        identity policies alone (the account root needs none), or raise
        AccessDeniedException with AWS's text: for operations authorized in the caller's
        account only, such as ListRetirableGrants ("You must specify a principal in your
        Amazon Web Services account"), for what no key policy can allow yet, such as the
        tags of a new key, and for the SSM API. ``extra`` holds the request's own condition
        keys."""
        decision = self._identity_decision(caller, action, resource, extra, service)
        if decision.allowed and resource.split(":")[4:5] != [caller.principal.account]:
            decision = Decision(False, Reason.NOT_CROSS_ACCOUNT, decision.request)
        decision.raise_if_denied()

    def _identity_decision(
        self,
        caller: Caller,
        action: str,
        resource: str,
        extra: Mapping[str, ContextValue] | None = None,
        service: str = "kms",
    ) -> Decision:
        principal = self.request_principal(caller)
        request = AuthzRequest.create(f"{service}:{action}", resource, principal)
        context = dict(request.context)
        context.update(self.request_context(caller, None, extra=extra))
        request = AuthzRequest(request.action, resource, principal, context)
        return evaluate(request, None, self.identity_policies(caller))

    def authorize_retire(
        self,
        caller: Caller,
        key: Key,
        grant: Grant | None,
        resource: ResourceFacts | None = None,
    ) -> None:
        """RetireGrant as "Retiring and revoking grants" (grant-delete.html) has it: the
        grant's retiring principal, or its grantee when it allows RetireGrant, may retire it;
        so may the account that owns the key or created the grant (its root, and its users
        and roles whose IAM policies allow kms:RetireGrant). kms:RetireGrant in a key policy
        allows nothing; an explicit Deny of it, in an IAM policy or in the key policy (with
        the key's tags and aliases as condition keys, ``resource``), wins over all of these.
        ``grant`` is None when there is no such grant: then only the key's account can be
        told so. Raises AccessDeniedException with AWS's text."""
        iam = self._identity_decision(caller, "RetireGrant", key.arn)
        if iam.reason is Reason.EXPLICIT_DENY_IDENTITY_POLICY:
            iam.raise_if_denied()
        denied = self.decide(caller, "RetireGrant", key, resource=resource)
        if denied.reason in _EXPLICIT_DENIES:
            denied.raise_if_denied()
        principal = self.request_principal(caller)
        if grant is not None and may_retire(
            principal,
            grantee_principal=grant.grantee_principal,
            operations=grant.operations,
            retiring_principal=grant.retiring_principal,
        ):
            return
        accounts = (
            {key.account} if grant is None else {key.account, _account(grant.issuing_account)}
        )
        if principal.account in accounts and iam.allowed:
            return
        if grant is not None and grant.retiring_principal == principal.root_arn and iam.allowed:
            return  # the retiring account delegates through its IAM policies
        Decision(False, Reason.NO_IDENTITY_POLICY_ALLOW, iam.request).raise_if_denied()

    def check_caller_lockout(self, caller: Caller, policy: Policy, key_arn: str) -> None:
        """The policy lockout safety check for ``caller`` (CreateKey, PutKeyPolicy): raise
        MalformedPolicyDocumentException with AWS's text unless ``policy`` lets the caller
        call PutKeyPolicy on ``key_arn`` afterwards."""
        check_lockout(
            policy,
            key_arn,
            self.request_principal(caller),
            self.identity_policies(caller),
            self.request_context(caller, None),
        )

    def authorize_assume_role(
        self, caller: Caller, role_arn: str, trust_policy: str, extra: Mapping[str, ContextValue]
    ) -> None:
        """Allow ``sts:AssumeRole`` of ``role_arn`` under its ``trust_policy`` (JSON) and the
        caller's identity policies, or raise AccessDeniedException with AWS's text. ``extra``
        holds the request's sts: condition keys (sts:RoleSessionName, sts:ExternalId)."""
        principal = self.request_principal(caller)
        context = dict(AuthzRequest.create("sts:AssumeRole", role_arn, principal).context)
        context.update(self.request_context(caller, None, extra=extra))
        request = AuthzRequest("sts:AssumeRole", role_arn, principal, context)
        policy = self.policies.get(PolicyKind.TRUST, trust_policy)
        evaluate(request, policy, self.identity_policies(caller)).raise_if_denied()


_EXPLICIT_DENIES = frozenset(
    {Reason.EXPLICIT_DENY_KEY_POLICY, Reason.EXPLICIT_DENY_IDENTITY_POLICY}
)


def _account(root_arn: str) -> str:
    """The account id of ``arn:aws:iam::<account>:root``."""
    return root_arn.split(":")[4]
