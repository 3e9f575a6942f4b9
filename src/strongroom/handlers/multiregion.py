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
    # AWS's answer (recorded: LocalStack's test_kms.snapshot.json, test_replicate_key,
    # "replicate-key") has no CurrentKeyMaterialId in the Creating replica's metadata (its
    # DescribeKey shows one once Enabled) and no ReplicaTags when the request has no tags.
    meta = key_metadata(replica, multiregion.replica_regions(core, replica))
    meta.pop("CurrentKeyMaterialId", None)
    out: Response = {"ReplicaKeyMetadata": meta, "ReplicaPolicy": replica.policy}
    if tags:
        out["ReplicaTags"] = tag_entries(tags)
    return out


def update_primary_region(core: Core, ctx: RequestContext, req: Request) -> Response:
    multiregion.update_primary_region(core, ctx, req["KeyId"], req["PrimaryRegion"])
    return {}
