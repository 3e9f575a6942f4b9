"""Handlers for key lifecycle operations."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import KeySpec, KeyUsage, Origin
from strongroom.handlers.shapes import key_metadata, page, tags_from
from strongroom.services import custom_key_store_keys, deletion, keys, multiregion
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def create_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    spec = req.get("KeySpec") or req.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    key = keys.create_key(
        core,
        ctx,
        description=req.get("Description", ""),
        key_spec=KeySpec(spec),
        key_usage=KeyUsage(req["KeyUsage"]) if "KeyUsage" in req else None,
        origin=Origin(req.get("Origin", "AWS_KMS")),
        policy=req.get("Policy"),
        tags=tags_from(req.get("Tags")),
        multi_region=req.get("MultiRegion", False),
        custom_key_store_id=req.get("CustomKeyStoreId"),
        xks_key_id=req.get("XksKeyId"),
        bypass_policy_lockout_safety_check=req.get("BypassPolicyLockoutSafetyCheck"),
    )
    cluster_id = custom_key_store_keys.cluster_id_of(core, key)
    return {"KeyMetadata": key_metadata(key, cluster_id=cluster_id)}


def describe_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    key = keys.describe_key(core, ctx, req["KeyId"])
    cluster_id = custom_key_store_keys.cluster_id_of(core, key)
    regions = multiregion.replica_regions(core, key)
    return {"KeyMetadata": key_metadata(key, regions, cluster_id)}


def list_keys(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, marker = keys.list_keys(core, ctx, limit=req.get("Limit", 100), marker=req.get("Marker"))
    return page("Keys", [{"KeyId": k.key_id, "KeyArn": k.arn} for k in found], marker)


def enable_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    keys.set_enabled(core, ctx, req["KeyId"], enabled=True)
    return {}


def disable_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    keys.set_enabled(core, ctx, req["KeyId"], enabled=False)
    return {}


def update_key_description(core: Core, ctx: RequestContext, req: Request) -> Response:
    keys.update_description(core, ctx, req["KeyId"], req["Description"])
    return {}


def schedule_key_deletion(core: Core, ctx: RequestContext, req: Request) -> Response:
    key = deletion.schedule_deletion(core, ctx, req["KeyId"], req.get("PendingWindowInDays"))
    return {
        "KeyId": key.arn,
        "DeletionDate": key.deletion_date,
        "KeyState": key.state.value,
        "PendingWindowInDays": key.pending_window_days,
    }


def cancel_key_deletion(core: Core, ctx: RequestContext, req: Request) -> Response:
    return {"KeyId": deletion.cancel_deletion(core, ctx, req["KeyId"]).arn}
