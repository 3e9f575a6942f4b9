"""Handlers for asymmetric keys: GetPublicKey, Sign, Verify, DeriveSharedSecret."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import KeyAgreementAlgorithm, MessageType, SigningAlgorithm, by_value
from strongroom.handlers.shapes import algorithm_list
from strongroom.services import asymmetric, key_agreement, signing
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]

_ALGORITHMS = by_value(SigningAlgorithm)
_MESSAGE_TYPES = by_value(MessageType)


def get_public_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, public_key = asymmetric.get_public_key(core, ctx, req["KeyId"])
    return {
        "KeyId": key.arn,
        "PublicKey": public_key,
        "CustomerMasterKeySpec": key.key_spec.value,
        "KeySpec": key.key_spec.value,
        "KeyUsage": key.key_usage.value,
        **algorithm_list(key),
    }


def _message_type(req: Request) -> MessageType:
    return _MESSAGE_TYPES[req.get("MessageType", "RAW")]


def sign(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, signature = signing.sign(
        core,
        ctx,
        req["KeyId"],
        req["Message"],
        algorithm=_ALGORITHMS[req["SigningAlgorithm"]],
        message_type=_message_type(req),
        dry_run=req.get("DryRun", False),
    )
    return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": req["SigningAlgorithm"]}


def verify(core: Core, ctx: RequestContext, req: Request) -> Response:
    key = signing.verify(
        core,
        ctx,
        req["KeyId"],
        req["Message"],
        req["Signature"],
        algorithm=_ALGORITHMS[req["SigningAlgorithm"]],
        message_type=_message_type(req),
        dry_run=req.get("DryRun", False),
    )
    return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": req["SigningAlgorithm"]}


def derive_shared_secret(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, secret = key_agreement.derive_shared_secret(
        core,
        ctx,
        req["KeyId"],
        req["PublicKey"],
        algorithm=KeyAgreementAlgorithm(req["KeyAgreementAlgorithm"]),
        recipient="Recipient" in req,
        dry_run=req.get("DryRun", False),
    )
    return {
        "KeyId": key.arn,
        "SharedSecret": secret,
        "KeyAgreementAlgorithm": req["KeyAgreementAlgorithm"],
        "KeyOrigin": key.origin.value,
    }
