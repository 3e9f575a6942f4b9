"""Handlers for aliases and tags."""

from __future__ import annotations

from typing import Any

from strongroom.handlers.shapes import alias_entry, page, tag_entries, tags_from
from strongroom.services import aliases, tags
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def create_alias(core: Core, ctx: RequestContext, req: Request) -> Response:
    aliases.create_alias(core, ctx, req["AliasName"], req["TargetKeyId"])
    return {}


def update_alias(core: Core, ctx: RequestContext, req: Request) -> Response:
    aliases.update_alias(core, ctx, req["AliasName"], req["TargetKeyId"])
    return {}


def delete_alias(core: Core, ctx: RequestContext, req: Request) -> Response:
    aliases.delete_alias(core, ctx, req["AliasName"])
    return {}


def list_aliases(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, marker = aliases.list_aliases(
        core,
        ctx,
        key_id=req.get("KeyId"),
        limit=min(req.get("Limit", 50), 100),
        marker=req.get("Marker"),
    )
    return page("Aliases", [alias_entry(a) for a in found], marker)


def tag_resource(core: Core, ctx: RequestContext, req: Request) -> Response:
    tags.tag_resource(core, ctx, req["KeyId"], tags_from(req["Tags"]))
    return {}


def untag_resource(core: Core, ctx: RequestContext, req: Request) -> Response:
    tags.untag_resource(core, ctx, req["KeyId"], req["TagKeys"])
    return {}


def list_resource_tags(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, marker = tags.list_tags(
        core, ctx, req["KeyId"], limit=min(req.get("Limit", 50), 50), marker=req.get("Marker")
    )
    return page("Tags", tag_entries(found), marker)
