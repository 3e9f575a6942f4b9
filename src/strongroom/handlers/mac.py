"""Handlers for HMAC keys: GenerateMac and VerifyMac."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import MacAlgorithm, by_value
from strongroom.services import mac
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]

_ALGORITHMS = by_value(MacAlgorithm)


def generate_mac(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, tag = mac.generate_mac(
        core,
        ctx,
        req["KeyId"],
        req["Message"],
        algorithm=_ALGORITHMS[req["MacAlgorithm"]],
        dry_run=req.get("DryRun", False),
    )
    return {"Mac": tag, "MacAlgorithm": req["MacAlgorithm"], "KeyId": key.arn}


def verify_mac(core: Core, ctx: RequestContext, req: Request) -> Response:
    key = mac.verify_mac(
        core,
        ctx,
        req["KeyId"],
        req["Message"],
        req["Mac"],
        algorithm=_ALGORITHMS[req["MacAlgorithm"]],
        dry_run=req.get("DryRun", False),
    )
    return {"KeyId": key.arn, "MacValid": True, "MacAlgorithm": req["MacAlgorithm"]}
