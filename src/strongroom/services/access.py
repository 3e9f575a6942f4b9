"""The authorization seam, and what every cryptographic operation checks before it runs: the
key a request names, the caller's permission (by policy or by grant), the key's state and
usage, the DryRun flag.

Every authorization decision of the services is made here (an import-linter contract keeps
``authz.decision`` out of every module but ``services.core``, which builds the runtime's
``Authorizer``; a unit test checks that only this module calls it): ``authorize_key`` for an
operation on an existing key, with the whole request context (the grants in force, the key's
tags and aliases, its facts and the request's condition keys), ``authorize_account`` for
operations with no key resource, and the few rules of their own (identity-only checks,
RetireGrant, the lockout check, sts:AssumeRole)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from strongroom.authz.conditions import ContextValue
from strongroom.authz.context_keys import VIA_SERVICE, flag, request_tags
from strongroom.authz.grants import NO_GRANTS, GrantRule, KeyGrants, rule_of
from strongroom.authz.policy import Policy, PolicyKind
from strongroom.domain.errors import (
    DryRunOperationException,
    InvalidGrantTokenException,
    UnsupportedOperationException,
)
from strongroom.domain.ids import token_grant_id
from strongroom.domain.models import Caller, Grant, Key, Tag
from strongroom.domain.operations import Operation, check_state, check_usage
from strongroom.services.core import Core, RequestContext
from strongroom.services.facts import KeyFacts
from strongroom.services.key_usage import TRAILING_DAYS_ACTIONS, trailing_days
from strongroom.services.resolve import resolve_key

DRY_RUN_MESSAGE = "The request would have succeeded, but the DryRun option is set."


def requested_alias(key_id: str) -> str | None:
    """The alias name a KeyId parameter names (``alias/x`` or an alias ARN), for
    kms:RequestAlias; None for key ids and key ARNs."""
    if key_id.startswith("alias/"):
        return key_id
    if key_id.startswith("arn:") and ":alias/" in key_id:
        return "alias/" + key_id.split(":alias/", 1)[1]
    return None


INVALID_GRANT_TOKEN = "The grant token is not valid."


def grants_in_force(core: Core, ctx: RequestContext, key: Key) -> KeyGrants:
    """The grants that count for a request on ``key``: the key's live grants, read once per
    process and dropped through the change feed with the key, and those the request's grant
    tokens name that this process has not read yet (looked up in the database, so a new grant
    works at once with its token, "Using a grant token", grant-manage.html). A token naming no
    live grant of ``key`` adds nothing. Raises InvalidGrantTokenException for a token that is
    not a grant token.
    """
    found = core.cache.grants(key.arn)
    if found is None:
        with core.store.read() as tx:
            rules = {g.grant_id: rule_of(g) for g in tx.grants.list(key.arn)}
        found = KeyGrants(rules) if rules else NO_GRANTS
        core.cache.put_grants(key.arn, found)
    if not ctx.grant_tokens:
        return found
    unseen = [_token_grant_id(t) for t in ctx.grant_tokens]
    unseen = [grant_id for grant_id in unseen if grant_id not in found]
    if not unseen:
        return found
    extra: dict[str, GrantRule] = {}
    with core.store.read() as tx:
        for grant_id in unseen:
            grant = tx.grants.get(grant_id)
            if grant is not None and grant.key_arn == key.arn:
                extra[grant_id] = rule_of(grant)
    return found.with_rules(extra) if extra else found


def _token_grant_id(token: str) -> str:
    grant_id = token_grant_id(token)
    if grant_id is None:
        raise InvalidGrantTokenException(INVALID_GRANT_TOKEN)
    return grant_id


def authorize_key(
    core: Core,
    ctx: RequestContext,
    action: str,
    key: Key,
    *,
    encryption_context: Mapping[str, str] | None = None,
    request_alias: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
    grant_filter: Callable[[GrantRule], bool] | None = None,
    caller: Caller | None = None,
) -> None:
    """Allow ``kms:<action>`` on ``key`` by its key policy, the caller's IAM policies or the
    grants in force, with the key's tags and aliases at hand for conditions on
    aws:ResourceTag/<k> and kms:ResourceAliases; ``extra`` holds the operation's own
    condition keys, ``grant_filter`` narrows the grants that may allow. ``caller`` replaces
    the request's caller (the same principal signing for another Region). DisableKey and
    ScheduleKeyDeletion also see kms:TrailingDaysWithoutKeyUsage. A request an integrated
    service makes on the caller's behalf (``ctx.via_service``, Parameter Store) carries
    kms:ViaService; a direct call never does. Raises InvalidGrantTokenException,
    AccessDeniedException."""
    if ctx.via_service is not None:
        extra = {**(extra or {}), VIA_SERVICE: ctx.via_service}
    if action in TRAILING_DAYS_ACTIONS:
        extra = {**(extra or {}), **trailing_days(core, key)}
    core.authz.authorize(
        caller or ctx.caller,
        action,
        key,
        encryption_context=encryption_context,
        request_alias=request_alias,
        extra=extra,
        grants=grants_in_force(core, ctx, key),
        grant_filter=grant_filter,
        resource=KeyFacts(core, key),
    )


def authorize_account(
    core: Core,
    ctx: RequestContext,
    action: str,
    *,
    extra: Mapping[str, ContextValue] | None = None,
    caller: Caller | None = None,
) -> None:
    """Allow ``kms:<action>`` on ``*`` (an operation with no key resource: CreateKey, ListKeys,
    ListAliases, GenerateRandom, the alias half of DeleteAlias, the custom key store
    operations) by the caller's IAM policies; ``caller`` as for ``authorize_key``. Raises
    AccessDeniedException."""
    core.authz.authorize(caller or ctx.caller, action, None, extra=extra)


def authorize_retire(core: Core, ctx: RequestContext, key: Key, grant: Grant | None) -> None:
    """RetireGrant of ``grant`` (None: no such grant) on ``key``: the grant's rule
    (``authz.decision.Authorizer.authorize_retire``), with an explicit Deny of a key policy
    or IAM policy on the key (its tags and aliases included) winning. Raises
    AccessDeniedException."""
    core.authz.authorize_retire(ctx.caller, key, grant, KeyFacts(core, key))


def authorize_principal_resource(
    core: Core, ctx: RequestContext, action: str, principal_arn: str
) -> None:
    """Allow ``kms:<action>`` on a principal of the caller's account (ListRetirableGrants) by
    the caller's IAM policies alone. Raises AccessDeniedException."""
    core.authz.authorize_identity(ctx.caller, action, principal_arn)


def authorize_parameter(
    core: Core,
    ctx: RequestContext,
    action: str,
    resource: str,
    extra: Mapping[str, ContextValue] | None = None,
) -> None:
    """Allow ``ssm:<action>`` (GetParameter, PutParameter, ...) on ``resource`` (a parameter
    ARN, or ``*`` for DescribeParameters) by the caller's IAM policies (the account root
    needs none), as Parameter Store authorizes its API; ``extra`` holds the request's own
    condition keys (PutParameter's ssm:Overwrite and ssm:Policies). Raises
    AccessDeniedException."""
    if resource == "*":
        resource = f"arn:aws:ssm:{ctx.region}:{ctx.account}:*"
    core.authz.authorize_identity(ctx.caller, action, resource, extra=extra, service="ssm")


def parse_key_policy(core: Core, key_arn: str, document: str) -> Policy:
    """``document`` parsed as the key policy of ``key_arn`` (kept with the other parsed
    policies, shared with every key whose policy is the same text). Raises
    MalformedPolicyDocumentException."""
    return core.authz.policies.get(PolicyKind.KEY, document)


def check_lockout(core: Core, caller: Caller, policy: Policy, key_arn: str) -> None:
    """The policy lockout safety check (CreateKey, PutKeyPolicy): raise
    MalformedPolicyDocumentException with AWS's text unless ``policy`` lets ``caller`` call
    PutKeyPolicy on ``key_arn`` afterwards."""
    core.authz.check_caller_lockout(caller, policy, key_arn)


def authorize_assume_role(
    core: Core,
    caller: Caller,
    role_arn: str,
    trust_policy: str,
    extra: Mapping[str, ContextValue],
) -> None:
    """Allow ``sts:AssumeRole`` of ``role_arn`` under its trust policy (JSON) and the caller's
    identity policies; ``extra`` holds the request's sts: condition keys. Raises
    AccessDeniedException."""
    core.authz.authorize_assume_role(caller, role_arn, trust_policy, extra)


def usable_key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    operation: Operation,
    action: str | None = None,
    *,
    encryption_context: Mapping[str, str] | None = None,
    extra: Mapping[str, ContextValue] | None = None,
) -> Key:
    """The key ``key_id`` names, once the caller may ``kms:<action>`` on it (``action``
    defaults to ``operation``; ``encryption_context`` feeds the kms:EncryptionContext
    condition keys, ``extra`` the operation's own) and its state and usage allow
    ``operation``.

    Raises NotFoundException, InvalidGrantTokenException, AccessDeniedException,
    DisabledException, KMSInvalidStateException, InvalidKeyUsageException (or the error
    ``domain.usage`` gives a key spec the operation does not take), in that order.
    """
    key = resolve_key(core, ctx, key_id)
    authorize_key(
        core,
        ctx,
        action or operation,
        key,
        encryption_context=encryption_context,
        request_alias=requested_alias(key_id),
        extra=extra,
    )
    check_state(operation, key)
    check_usage(operation, key)
    return key


def authorize_new_key_tags(core: Core, caller: Caller, key_arn: str, tags: Sequence[Tag]) -> None:
    """kms:TagResource for the ``tags`` of a key being made (CreateKey, ReplicateKey "To use
    the Tags parameter, kms:TagResource (IAM policy)"): the key and its policy do not exist
    yet, so the caller's identity policies alone decide, on the new key's ARN, which an IAM
    policy can only cover with every key of the account and Region ("To add tags while
    creating a KMS key, the principal must have permission in an IAM policy that isn't
    restricted to particular KMS keys", tag-permissions.html). Conditions see the tags as
    aws:RequestTag/<k> and aws:TagKeys. Nothing to check without tags. Raises
    AccessDeniedException."""
    if tags:
        extra = request_tags((t.key, t.value) for t in tags)
        core.authz.authorize_identity(caller, "TagResource", key_arn, extra=extra)


def bypass_context(bypass_lockout: bool | None) -> dict[str, ContextValue]:
    """kms:BypassPolicyLockoutSafetyCheck (CreateKey, PutKeyPolicy): absent when the request
    leaves BypassPolicyLockoutSafetyCheck out (``None``), as AWS KMS's Null example relies on
    ("Condition keys for AWS KMS", kms:BypassPolicyLockoutSafetyCheck)."""
    if bypass_lockout is None:
        return {}
    return {"kms:BypassPolicyLockoutSafetyCheck": flag(bypass_lockout)}


def dry_run_error() -> DryRunOperationException:
    """What a request with ``DryRun`` set gets once every check has passed."""
    return DryRunOperationException(DRY_RUN_MESSAGE)


def check_dry_run(dry_run: bool) -> None:
    """Raise DryRunOperationException when ``dry_run`` is set; call it after every check."""
    if dry_run:
        raise dry_run_error()


def refuse_recipient(recipient: bool) -> None:
    """UnsupportedOperationException when a request names a Recipient: this server has no
    attested environments (Nitro Enclaves, NitroTPM) to encrypt for."""
    if recipient:
        raise UnsupportedOperationException(
            "Recipient (attested environments: Nitro Enclaves, NitroTPM) is not supported "
            "by this server."
        )
