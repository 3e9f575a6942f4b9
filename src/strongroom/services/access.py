"""What every cryptographic operation checks before it runs: the key a request names, the
caller's permission (by policy or by grant), the key's state and usage, the DryRun flag."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from strongroom.authz.conditions import ContextValue
from strongroom.authz.decision import authorize, authorize_identity, flag, request_tags
from strongroom.authz.grants import GrantRule, KeyGrants, rule_of
from strongroom.domain.errors import (
    DryRunOperationException,
    InvalidGrantTokenException,
    UnsupportedOperationException,
)
from strongroom.domain.ids import token_grant_id
from strongroom.domain.keystate import check_state
from strongroom.domain.models import Caller, Key, Tag
from strongroom.domain.usage import check_usage
from strongroom.services.core import Core, RequestContext
from strongroom.services.facts import KeyFacts
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
        with core.store.transaction() as tx:
            rules = {g.grant_id: rule_of(g) for g in tx.grants.list(key.arn)}
        found = KeyGrants(rules)
        core.cache.put_grants(key.arn, found)
    if not ctx.grant_tokens:
        return found
    unseen = [_token_grant_id(t) for t in ctx.grant_tokens]
    unseen = [grant_id for grant_id in unseen if grant_id not in found]
    if not unseen:
        return found
    extra: dict[str, GrantRule] = {}
    with core.store.transaction() as tx:
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
) -> None:
    """``authz.decision.authorize`` of ``kms:<action>`` on ``key`` with the grants in force
    and the key's tags and aliases at hand for conditions on aws:ResourceTag/<k> and
    kms:ResourceAliases; ``extra`` holds the operation's own condition keys. Raises
    InvalidGrantTokenException, AccessDeniedException."""
    authorize(
        ctx.caller,
        action,
        key,
        encryption_context=encryption_context,
        request_alias=request_alias,
        extra=extra,
        grants=grants_in_force(core, ctx, key),
        grant_filter=grant_filter,
        resource=KeyFacts(core, key),
    )


def usable_key(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    operation: str,
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


def authorize_new_key_tags(caller: Caller, key_arn: str, tags: Sequence[Tag]) -> None:
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
        authorize_identity(caller, "TagResource", key_arn, extra=extra)


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
