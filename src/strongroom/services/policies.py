"""Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies, and the checks CreateKey's
Policy passes too.

A key has one policy, named ``default`` (KMS ``ListKeyPolicies``: "The only valid policy
name is default"). A new policy must parse (``authz.policy.parse_policy``), name only
principals that exist, and, unless BypassPolicyLockoutSafetyCheck is set, let the caller
change it again (the policy lockout safety check).
"""

from __future__ import annotations

from contextlib import nullcontext

from strongroom.authz.policy import Policy, named_principals
from strongroom.domain.errors import MalformedPolicyDocumentException, NotFoundException
from strongroom.domain.models import Caller
from strongroom.domain.operations import Operation, check_state
from strongroom.services.access import (
    authorize_key,
    bypass_context,
    check_lockout,
    parse_key_policy,
)
from strongroom.services.core import Core, RequestContext
from strongroom.services.keys import change_key
from strongroom.services.resolve import resolve_key
from strongroom.storage.ports import Transaction

POLICY_NAME = "default"
INVALID_PRINCIPALS = "Policy contains a statement with one or more invalid principals."


def _check_policy_name(policy_name: str | None) -> None:
    if policy_name is not None and policy_name != POLICY_NAME:
        # Not recorded against AWS: AWS answers NotFoundException for another name.
        raise NotFoundException(f"No such policy exists: {policy_name}")


def principals_exist(tx: Transaction, arns: frozenset[str]) -> bool:
    """Whether every principal ARN a policy names exists (a session: its role)."""
    accounts = set(tx.identities.list_accounts())
    for arn in arns:
        # arn:aws:iam::ACCOUNT:root|user/N|role/N, arn:aws:sts::ACCOUNT:assumed-role/R/S
        _, _, _, _, account, rest = arn.split(":", 5)
        if account not in accounts:
            return False
        if rest == "root":
            continue
        if rest.startswith("assumed-role/"):
            rest = "role/" + rest.split("/")[1]
        elif rest.startswith("federated-user/"):
            continue
        if tx.identities.get_principal(f"arn:aws:iam::{account}:{rest}") is None:
            return False
    return True


def validate_key_policy(
    core: Core,
    caller: Caller,
    text: str,
    key_arn: str,
    *,
    bypass_lockout: bool,
    tx: Transaction | None = None,
) -> Policy:
    """Parse a new key policy and run the checks of CreateKey and PutKeyPolicy; the
    principals are looked up in ``tx`` when given, else in a transaction of its own.

    Raises MalformedPolicyDocumentException (grammar, principals that do not exist, the
    lockout safety check unless ``bypass_lockout``) or LimitExceededException (size).
    """
    policy = parse_key_policy(core, key_arn, text)
    with core.store.transaction() if tx is None else nullcontext(tx) as t:
        exists = principals_exist(t, named_principals(policy))
    if not exists:
        raise MalformedPolicyDocumentException(INVALID_PRINCIPALS)
    if not bypass_lockout:
        check_lockout(core, caller, policy, key_arn)
    return policy


def get_key_policy(
    core: Core, ctx: RequestContext, key_id: str, policy_name: str | None = None
) -> str:
    """GetKeyPolicy: the key's policy document. NotFoundException for another name."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "GetKeyPolicy", key)
    check_state(Operation.GET_KEY_POLICY, key)
    _check_policy_name(policy_name)
    return key.policy


def list_key_policies(core: Core, ctx: RequestContext, key_id: str) -> list[str]:
    """ListKeyPolicies: always ``["default"]``."""
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "ListKeyPolicies", key)
    check_state(Operation.LIST_KEY_POLICIES, key)
    return [POLICY_NAME]


def put_key_policy(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    policy: str,
    *,
    policy_name: str | None = None,
    bypass_lockout: bool | None = None,
) -> None:
    """PutKeyPolicy: replace the key's policy; every process drops the old one.
    ``bypass_lockout`` is None when the request leaves BypassPolicyLockoutSafetyCheck out
    (kms:BypassPolicyLockoutSafetyCheck is then absent, as AWS KMS's Null example relies on).

    Raises NotFoundException (key, policy name), AccessDeniedException,
    MalformedPolicyDocumentException, LimitExceededException, KMSInvalidStateException.
    """
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    extra = bypass_context(bypass_lockout)
    authorize_key(core, ctx, "PutKeyPolicy", key, extra=extra)
    _check_policy_name(policy_name)
    validate_key_policy(core, ctx.caller, policy, key.arn, bypass_lockout=bool(bypass_lockout))
    update = lambda k: k.evolve(policy=policy)  # noqa: E731
    change_key(core, ctx, key.arn, Operation.PUT_KEY_POLICY, update, extra=extra)
