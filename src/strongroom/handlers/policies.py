"""Handlers for key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies."""

from __future__ import annotations

from typing import Any

from strongroom.handlers.shapes import page
from strongroom.services import policies
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def get_key_policy(core: Core, ctx: RequestContext, req: Request) -> Response:
    name = req.get("PolicyName")
    text = policies.get_key_policy(core, ctx, req["KeyId"], name)
    return {"Policy": text, "PolicyName": name or policies.POLICY_NAME}


def put_key_policy(core: Core, ctx: RequestContext, req: Request) -> Response:
    policies.put_key_policy(
        core,
        ctx,
        req["KeyId"],
        req["Policy"],
        policy_name=req.get("PolicyName"),
        bypass_lockout=req.get("BypassPolicyLockoutSafetyCheck"),
    )
    return {}


def list_key_policies(core: Core, ctx: RequestContext, req: Request) -> Response:
    return page("PolicyNames", policies.list_key_policies(core, ctx, req["KeyId"]), None)
