"""Handlers for ML-KEM keys: Encapsulate, Decapsulate."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import EncapsulationAlgorithm
from strongroom.services import encapsulation
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def encapsulate(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, ciphertext, secret = encapsulation.encapsulate(
        core,
        ctx,
        req["KeyId"],
        algorithm=EncapsulationAlgorithm(req["EncapsulationAlgorithm"]),
        dry_run=req.get("DryRun", False),
    )
    return {
        "KeyId": key.arn,
        "SharedSecret": secret,
        "SharedSecretCiphertextBlob": ciphertext,
        "EncapsulationAlgorithm": req["EncapsulationAlgorithm"],
    }


def decapsulate(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, secret = encapsulation.decapsulate(
        core,
        ctx,
        req["KeyId"],
        req["SharedSecretCiphertextBlob"],
        algorithm=EncapsulationAlgorithm(req["EncapsulationAlgorithm"]),
        dry_run=req.get("DryRun", False),
    )
    return {
        "KeyId": key.arn,
        "SharedSecret": secret,
        "EncapsulationAlgorithm": req["EncapsulationAlgorithm"],
    }
