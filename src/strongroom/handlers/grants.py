"""Handlers for grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
(GrantTokens, on these and every other operation that has them, reach the services through
``RequestContext.grant_tokens``.)"""

from __future__ import annotations

from typing import Any

from strongroom.domain.models import Grant
from strongroom.handlers.shapes import page
from strongroom.services import grants
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def _limit(req: Request) -> int:
    # "If you include a value, it must be between 1 and 100, inclusive. If you do not include
    # a value, it defaults to 50." (ListGrantsRequest.Limit)
    limit: int = req.get("Limit", 50)
    return min(limit, 100)


def grant_entry(grant: Grant) -> dict[str, Any]:
    """``GrantListEntry``."""
    entry: dict[str, Any] = {
        "KeyId": grant.key_arn,
        "GrantId": grant.grant_id,
        "Name": grant.name,
        "CreationDate": grant.creation_date,
        "GranteePrincipal": grant.grantee_principal,
        "RetiringPrincipal": grant.retiring_principal,
        "IssuingAccount": grant.issuing_account,
        "Operations": list(grant.operations),
    }
    if grant.encryption_context_equals is not None:
        entry["Constraints"] = {"EncryptionContextEquals": dict(grant.encryption_context_equals)}
    elif grant.encryption_context_subset is not None:
        entry["Constraints"] = {"EncryptionContextSubset": dict(grant.encryption_context_subset)}
    return entry


def create_grant(core: Core, ctx: RequestContext, req: Request) -> Response:
    constraints = req.get("Constraints") or {}
    grants.refuse_service_principals(
        req.get("GranteeServicePrincipal"),
        req.get("RetiringServicePrincipal"),
        constraints.get("SourceArn"),
    )
    grant, token = grants.create_grant(
        core,
        ctx,
        req["KeyId"],
        grantee_principal=req.get("GranteePrincipal"),
        operations=req["Operations"],
        retiring_principal=req.get("RetiringPrincipal"),
        encryption_context_equals=constraints.get("EncryptionContextEquals"),
        encryption_context_subset=constraints.get("EncryptionContextSubset"),
        name=req.get("Name"),
        dry_run=req.get("DryRun", False),
    )
    return {"GrantToken": token, "GrantId": grant.grant_id}


def list_grants(core: Core, ctx: RequestContext, req: Request) -> Response:
    grants.refuse_service_principals(req.get("GranteeServicePrincipal"))
    found, marker = grants.list_grants(
        core,
        ctx,
        req["KeyId"],
        limit=_limit(req),
        marker=req.get("Marker"),
        grant_id=req.get("GrantId"),
        grantee_principal=req.get("GranteePrincipal"),
    )
    return page("Grants", [grant_entry(g) for g in found], marker)


def list_retirable_grants(core: Core, ctx: RequestContext, req: Request) -> Response:
    grants.refuse_service_principals(req.get("RetiringServicePrincipal"))
    found, marker = grants.list_retirable_grants(
        core,
        ctx,
        req.get("RetiringPrincipal"),
        limit=_limit(req),
        marker=req.get("Marker"),
    )
    return page("Grants", [grant_entry(g) for g in found], marker)


def retire_grant(core: Core, ctx: RequestContext, req: Request) -> Response:
    grants.retire_grant(
        core,
        ctx,
        grant_token=req.get("GrantToken"),
        key_id=req.get("KeyId"),
        grant_id=req.get("GrantId"),
        dry_run=req.get("DryRun", False),
    )
    return {}


def revoke_grant(core: Core, ctx: RequestContext, req: Request) -> Response:
    grants.revoke_grant(core, ctx, req["KeyId"], req["GrantId"], dry_run=req.get("DryRun", False))
    return {}
