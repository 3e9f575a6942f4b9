"""Handlers for multi-Region keys: ReplicateKey, UpdatePrimaryRegion."""

from __future__ import annotations

from typing import Any

from strongroom.handlers.shapes import key_metadata, tag_entries, tags_from
from strongroom.services import multiregion
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def replicate_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    tags = tags_from(req.get("Tags"))
    replica = multiregion.replicate_key(
        core,
        ctx,
        req["KeyId"],
        req["ReplicaRegion"],
        policy=req.get("Policy"),
        bypass_policy_lockout_safety_check=req.get("BypassPolicyLockoutSafetyCheck", False),
        description=req.get("Description", ""),
        tags=tags,
    )
    return {
        "ReplicaKeyMetadata": key_metadata(replica, multiregion.replica_regions(core, replica)),
        "ReplicaPolicy": replica.policy,
        "ReplicaTags": tag_entries(tags),
    }


def update_primary_region(core: Core, ctx: RequestContext, req: Request) -> Response:
    multiregion.update_primary_region(core, ctx, req["KeyId"], req["PrimaryRegion"])
    return {}
