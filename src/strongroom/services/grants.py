"""Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and RevokeGrant.

AWS KMS Developer Guide, "Grants in AWS KMS" (grants.html), "Creating grants"
(create-grant-overview.html), "Retiring and revoking grants" (grant-delete.html), and the
``CreateGrant`` ... ``RevokeGrant`` documentation of the service model. A grant allows its
grantee some operations on one key (``authz.grants``); which grants count for a request, grant
tokens included, is ``services.access.grants_in_force``. Every change of a key's grants is
recorded on the key's change feed, so every process drops the grants it cached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from strongroom.authz.conditions import ContextValue
from strongroom.authz.evaluate import RequestPrincipal
from strongroom.authz.grants import (
    invalid_grant_operations,
    may_create_child,
    takes_constraints,
)
from strongroom.domain.errors import (
    InvalidArnException,
    InvalidGrantIdException,
    InvalidGrantTokenException,
    LimitExceededException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from strongroom.domain.ids import (
    account_root_arn,
    grant_token,
    is_grant_id,
    new_grant_id,
    parse_arn,
    token_grant_id,
)
from strongroom.domain.models import Grant, Key
from strongroom.domain.operations import Operation, check_state
from strongroom.domain.quotas import GRANTS_PER_KEY
from strongroom.services.access import (
    INVALID_GRANT_TOKEN,
    authorize_key,
    authorize_principal_resource,
    authorize_retire,
    check_dry_run,
)
from strongroom.services.core import Core, RequestContext
from strongroom.services.loading import load_key
from strongroom.services.paging import decode_moment_marker, encode_moment_marker, next_page
from strongroom.services.quotas import limit
from strongroom.services.resolve import resolve_key
from strongroom.services.validation import constraint_error

EQUALS, SUBSET = "EncryptionContextEquals", "EncryptionContextSubset"
MAX_CONSTRAINT_PAIRS, MAX_CONSTRAINT_VALUE = 8, 384  # CreateGrantRequest.Constraints doc
ONLY_CREATE_GRANT = "Grants must not contain only the CreateGrant operation."  # AWS's text
MORE_THAN_ONE_CONSTRAINT = "More than one constraint supplied"  # AWS's text
SERVICE_PRINCIPALS = "AWS service principals are not supported by this server."
# AWS KMS's CreateGrant answer to an alias ARN as KeyId, as Lambda relays it
# (hashicorp/terraform#20813, ministryofjustice/modernisation-platform#8298).
ALIASES_REFUSED = "Key Aliases are not supported for this operation."
# kms:GrantIsForAWSResource: no AWS service calls this server on a user's behalf.
_NOT_FOR_AWS_RESOURCE: Mapping[str, ContextValue] = {"kms:GrantIsForAWSResource": "false"}


def refuse_service_principals(*values: object) -> None:
    """UnsupportedOperationException when a request names an AWS service principal or a
    SourceArn constraint (GranteeServicePrincipal, RetiringServicePrincipal): no AWS service
    acts through this server."""
    if any(v is not None for v in values):
        raise UnsupportedOperationException(SERVICE_PRINCIPALS)


def create_grant(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    grantee_principal: str | None,
    operations: Sequence[str],
    retiring_principal: str | None = None,
    encryption_context_equals: Mapping[str, str] | None = None,
    encryption_context_subset: Mapping[str, str] | None = None,
    name: str | None = None,
    dry_run: bool = False,
) -> tuple[Grant, str]:
    """CreateGrant: the grant and a new grant token for it. With ``name``, a request whose
    grantee, retiring principal, operations and constraint match a grant of that name on the
    key returns that grant (a retry), with a new token.

    Raises ValidationException (missing grantee, operations the key cannot do, constraints),
    InvalidArnException (also for an alias ARN as ``key_id``), NotFoundException,
    InvalidGrantTokenException, AccessDeniedException, DisabledException,
    KMSInvalidStateException, LimitExceededException, DryRunOperationException.
    """
    if grantee_principal is None:
        raise ValidationException("You must specify a GranteePrincipal.")
    grantee = _principal("granteePrincipal", grantee_principal)
    retiring = (
        None if retiring_principal is None else _principal("retiringPrincipal", retiring_principal)
    )
    arn = parse_arn(key_id)
    if arn is not None and arn.kind == "alias":
        raise InvalidArnException(ALIASES_REFUSED)
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    ops = tuple(dict.fromkeys(operations))
    equals, subset = encryption_context_equals, encryption_context_subset
    authorize_key(
        core,
        ctx,
        "CreateGrant",
        key,
        encryption_context=equals if equals is not None else subset,
        extra=_condition_keys(grantee, retiring, ops, equals, subset),
        grant_filter=lambda parent: may_create_child(parent, ops, equals, subset),
    )
    check_state(Operation.CREATE_GRANT, key)
    _check_grant(key, ops, equals, subset)
    check_dry_run(dry_run)
    wanted = Grant(
        grant_id=new_grant_id(),
        key_arn=key.arn,
        grantee_principal=grantee,
        operations=ops,
        issuing_account=account_root_arn(ctx.account),
        creation_date=core.clock(),
        retiring_principal=retiring,
        encryption_context_equals=None if equals is None else dict(equals),
        encryption_context_subset=None if subset is None else dict(subset),
        name=name,
    )
    grant = _insert(core, key, wanted)
    return grant, grant_token(grant.grant_id)


def _insert(core: Core, key: Key, wanted: Grant) -> Grant:
    """Store ``wanted`` unless it retries a grant of the same name; the grant stored."""
    with core.store.transaction() as tx:
        # The key's row is locked, so grants of one key are counted one CreateGrant at a time.
        if tx.keys.get(key.arn, for_update=True) is None:
            raise NotFoundException(f"Key '{key.arn}' does not exist")
        if wanted.name is not None:
            for grant in tx.grants.list(key.arn, name=wanted.name):
                if _same_parameters(grant, wanted):
                    return grant
        most = limit(tx, key.account, key.region, GRANTS_PER_KEY, core.grants_per_key)
        if tx.grants.count(key.arn) >= most:
            raise LimitExceededException(
                f"The grant limit for {key.arn} has been reached: a KMS key can have at most "
                f"{most} grants."
            )
        if tx.grants.count(key.arn, wanted.grantee_principal) >= core.grants_per_grantee_per_key:
            raise LimitExceededException(
                f"The grant limit for grantee principal {wanted.grantee_principal} on "
                f"{key.arn} has been reached: at most {core.grants_per_grantee_per_key} grants."
            )
        tx.grants.insert(wanted)
        tx.changes.record(key.arn, wanted.creation_date)
    core.cache.invalidate(key.arn)
    return wanted


def _same_parameters(a: Grant, b: Grant) -> bool:
    return (
        a.grantee_principal == b.grantee_principal
        and a.retiring_principal == b.retiring_principal
        and set(a.operations) == set(b.operations)
        and a.encryption_context_equals == b.encryption_context_equals
        and a.encryption_context_subset == b.encryption_context_subset
    )


def _principal(field: str, arn: str) -> str:
    """``arn`` when it is the ARN of an account root, user, role, role session or federated
    user; InvalidArnException otherwise."""
    try:
        RequestPrincipal.from_arn(arn)
    except ValueError:
        raise InvalidArnException(
            f"{field} {arn} is not the ARN of an AWS principal (account, IAM user, IAM role, "
            "assumed-role session or federated user)."
        ) from None
    return arn


def _condition_keys(
    grantee: str,
    retiring: str | None,
    operations: tuple[str, ...],
    equals: Mapping[str, str] | None,
    subset: Mapping[str, str] | None,
) -> dict[str, ContextValue]:
    """The condition keys of a CreateGrant request (AWS KMS condition keys: kms:GranteePrincipal,
    kms:RetiringPrincipal, kms:GrantOperations, kms:GrantConstraintType,
    kms:GrantIsForAWSResource)."""
    keys: dict[str, ContextValue] = {
        **_NOT_FOR_AWS_RESOURCE,
        "kms:GranteePrincipal": grantee,
        "kms:GrantOperations": operations,
    }
    if retiring is not None:
        keys["kms:RetiringPrincipal"] = retiring
    if equals is not None or subset is not None:
        keys["kms:GrantConstraintType"] = EQUALS if equals is not None else SUBSET
    return keys


def _check_grant(
    key: Key,
    operations: tuple[str, ...],
    equals: Mapping[str, str] | None,
    subset: Mapping[str, str] | None,
) -> None:
    """ValidationException unless the operations and the constraint suit the key."""
    if not operations:
        raise constraint_error(
            "operations", "[]", "Member must have length greater than or equal to 1"
        )
    if set(operations) == {"CreateGrant"}:
        raise ValidationException(ONLY_CREATE_GRANT)
    invalid = invalid_grant_operations(key.key_usage, key.key_spec, operations)
    if invalid:
        raise ValidationException(
            f"{', '.join(invalid)} {'is' if len(invalid) == 1 else 'are'} not a valid grant "
            f"operation for {key.arn}, a key of key spec {key.key_spec} and key usage "
            f"{key.key_usage}."
        )
    if equals is not None and subset is not None:
        raise ValidationException(MORE_THAN_ONE_CONSTRAINT)
    constraint, member = (equals, EQUALS) if equals is not None else (subset, SUBSET)
    if constraint is None:
        return
    if not takes_constraints(key.key_usage, key.key_spec):
        raise ValidationException(
            f"{member} is not valid for {key.arn}: encryption context grant constraints are "
            "supported only for symmetric encryption KMS keys."
        )
    field = f"constraints.{member[:1].lower()}{member[1:]}"
    if len(constraint) > MAX_CONSTRAINT_PAIRS:
        raise ValidationException(
            f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
            f"Map must have no more than {MAX_CONSTRAINT_PAIRS} entries"
        )
    if any(len(v) > MAX_CONSTRAINT_VALUE for v in constraint.values()):
        raise ValidationException(
            f"1 validation error detected: Value at '{field}' failed to satisfy constraint: "
            f"Map value must have length less than or equal to {MAX_CONSTRAINT_VALUE}"
        )


def list_grants(
    core: Core,
    ctx: RequestContext,
    key_id: str,
    *,
    limit: int,
    marker: str | None,
    grant_id: str | None = None,
    grantee_principal: str | None = None,
) -> tuple[list[Grant], str | None]:
    """ListGrants: a page of the key's grants (of one grant id or grantee when given) and
    the marker of the next page, if any.

    Raises NotFoundException, AccessDeniedException, InvalidGrantIdException,
    InvalidMarkerException.
    """
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "ListGrants", key, extra=_NOT_FOR_AWS_RESOURCE)
    check_state(Operation.LIST_GRANTS, key)
    if grant_id is not None:
        _check_grant_id(grant_id)
    after = None if marker is None else _decode_marker(marker)
    with core.store.read() as tx:
        page = tx.grants.list(
            key.arn,
            grant_id=grant_id,
            grantee_principal=grantee_principal,
            after=after,
            limit=limit + 1,
        )
    return _page(page, limit)


def list_retirable_grants(
    core: Core,
    ctx: RequestContext,
    retiring_principal: str | None,
    *,
    limit: int,
    marker: str | None,
) -> tuple[list[Grant], str | None]:
    """ListRetirableGrants: a page of the grants, on keys of this Region in any account, whose
    retiring principal is ``retiring_principal`` (a principal of the caller's account).

    Raises ValidationException (no RetiringPrincipal), InvalidArnException,
    AccessDeniedException (kms:ListRetirableGrants in an IAM policy), InvalidMarkerException.
    """
    if retiring_principal is None:
        raise ValidationException("You must specify a RetiringPrincipal.")
    principal = _principal("retiringPrincipal", retiring_principal)
    authorize_principal_resource(core, ctx, "ListRetirableGrants", principal)
    after = None if marker is None else _decode_marker(marker)
    with core.store.read() as tx:
        page = tx.grants.list_retirable(principal, ctx.region, after=after, limit=limit + 1)
    return _page(page, limit)


def _page(found: list[Grant], limit: int) -> tuple[list[Grant], str | None]:
    return next_page(
        found, limit, lambda g: encode_moment_marker(_GRANT_MARKER, g.creation_date, g.grant_id)
    )


def _decode_marker(marker: str) -> tuple[datetime, str]:
    return decode_moment_marker(marker, _GRANT_MARKER, is_grant_id)


_GRANT_MARKER = "grant"


def _check_grant_id(grant_id: str) -> None:
    if not is_grant_id(grant_id):
        raise InvalidGrantIdException(f"Invalid grant ID: {grant_id}")


def _not_found(grant_id: str) -> NotFoundException:
    return NotFoundException(f"Grant ID {grant_id} not found")


def retire_grant(
    core: Core,
    ctx: RequestContext,
    *,
    grant_token: str | None = None,
    key_id: str | None = None,
    grant_id: str | None = None,
    dry_run: bool = False,
) -> None:
    """RetireGrant: delete the grant a grant token names, or the grant ``grant_id`` of the
    key ``key_id`` (key id or key ARN). Who may is ``access.authorize_retire``'s rule.

    Raises ValidationException (neither form), InvalidGrantTokenException,
    InvalidGrantIdException, NotFoundException, AccessDeniedException,
    DryRunOperationException.
    """
    if grant_token is not None:
        named = token_grant_id(grant_token)
        if named is None:
            raise InvalidGrantTokenException(INVALID_GRANT_TOKEN)
        if grant_id is not None and grant_id != named:
            raise ValidationException("GrantId does not identify the grant GrantToken names.")
    elif key_id is None or grant_id is None:
        raise ValidationException("Specify either GrantToken, or both KeyId and GrantId.")
    else:
        _check_grant_id(grant_id)
        named = grant_id
    key = None if key_id is None else resolve_key(core, ctx, key_id, allow_alias=False)
    with core.store.transaction() as tx:
        grant = tx.grants.get(named)
    if grant is not None and key is not None and grant.key_arn != key.arn:
        grant = None
    if key is None:
        arn = None if grant is None else parse_arn(grant.key_arn)
        if grant is None or arn is None or arn.region != ctx.region:
            raise _not_found(named)
        key = load_key(core, grant.key_arn)
        ctx.resources.append(key.arn)
    authorize_retire(core, ctx, key, grant)
    check_state(Operation.RETIRE_GRANT, key)
    if grant is None:
        raise _not_found(named)
    check_dry_run(dry_run)
    _delete(core, key, grant.grant_id)


def revoke_grant(
    core: Core, ctx: RequestContext, key_id: str, grant_id: str, *, dry_run: bool = False
) -> None:
    """RevokeGrant: delete a grant of the key; needs kms:RevokeGrant on the key.

    Raises NotFoundException, AccessDeniedException, InvalidGrantIdException,
    DryRunOperationException.
    """
    key = resolve_key(core, ctx, key_id, allow_alias=False)
    authorize_key(core, ctx, "RevokeGrant", key, extra=_NOT_FOR_AWS_RESOURCE)
    check_state(Operation.REVOKE_GRANT, key)
    _check_grant_id(grant_id)
    with core.store.transaction() as tx:
        grant = tx.grants.get(grant_id)
    if grant is None or grant.key_arn != key.arn:
        raise _not_found(grant_id)
    check_dry_run(dry_run)
    _delete(core, key, grant_id)


def _delete(core: Core, key: Key, grant_id: str) -> None:
    """Delete a grant; it stops working in this process at once and in every other one with
    its next poll of the change feed."""
    with core.store.transaction() as tx:
        if not tx.grants.delete(grant_id):
            raise _not_found(grant_id)  # retired or revoked by a concurrent request
        tx.changes.record(key.arn, core.clock())
    core.cache.invalidate(key.arn)
