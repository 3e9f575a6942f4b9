"""What every cryptographic operation checks before it runs: the key a request names, the
caller's permission, the key's state and usage, the DryRun flag."""

from __future__ import annotations

from collections.abc import Mapping

from strongroom.authz.conditions import ContextValue
from strongroom.authz.decision import authorize, flag
from strongroom.domain.errors import DryRunOperationException, UnsupportedOperationException
from strongroom.domain.keystate import check_state
from strongroom.domain.models import Key
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


def authorize_key(
    core: Core,
    ctx: RequestContext,
    action: str,
    key: Key,
    *,
    encryption_context: Mapping[str, str] | None = None,
    request_alias: str | None = None,
    extra: Mapping[str, ContextValue] | None = None,
) -> None:
    """``authz.decision.authorize`` of ``kms:<action>`` on ``key``, with the key's tags and
    aliases at hand for conditions on aws:ResourceTag/<k> and kms:ResourceAliases; ``extra``
    holds the operation's own condition keys. Raises AccessDeniedException."""
    authorize(
        ctx.caller,
        action,
        key,
        encryption_context=encryption_context,
        request_alias=request_alias,
        extra=extra,
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

    Raises NotFoundException, AccessDeniedException, DisabledException,
    KMSInvalidStateException, InvalidKeyUsageException (or the error ``domain.usage``
    gives a key spec the operation does not take), in that order.
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
