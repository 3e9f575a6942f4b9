"""The one authorization call every operation makes.

``authorize`` asks the evaluator (``authz.evaluate``) whether the caller may do
``kms:<action>`` on a key, with the key's policy, the caller's identity policies and the
request's condition keys, as AWS KMS decides ("Determining access to a KMS key",
https://docs.aws.amazon.com/kms/latest/developerguide/determining-access.html).

Policies are parsed once per (owner ARN, policy text) and kept: the hot path pays a dict
lookup, never ``parse_policy``. A changed policy has another text, so it is parsed anew.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from strongroom.authz.conditions import ContextValue
from strongroom.authz.evaluate import (
    AuthzRequest,
    Decision,
    RequestPrincipal,
    check_lockout,
    evaluate,
)
from strongroom.authz.policy import Policy, PolicyKind, parse_policy
from strongroom.domain.models import Caller, Key

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
    kms:KeyOrigin and kms:RequestAlias."""
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
    grants_allow: bool = False,
) -> Decision:
    """The evaluator's decision on ``kms:<action>`` by ``caller`` on ``key`` (``*`` if None)."""
    resource = key.arn if key is not None else "*"
    # AuthzRequest.create's context, with the principal's part computed once per pair.
    principal, context = _base_context(caller, resource)
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
    return evaluate(request, key_policy, identity_policies(caller), grants_allow)


def authorize(
    caller: Caller,
    action: str,
    key: Key | None = None,
    *,
    encryption_context: Mapping[str, str] | None = None,
    request_alias: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
) -> None:
    """Allow ``kms:<action>`` on ``key`` (or on ``*`` when None) or raise
    AccessDeniedException with AWS's text."""
    decide(
        caller,
        action,
        key,
        encryption_context=encryption_context,
        request_alias=request_alias,
        extra=extra,
    ).raise_if_denied()


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
