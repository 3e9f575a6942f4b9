"""Handlers for GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import DataKeyPairSpec
from strongroom.domain.operations import Operation
from strongroom.domain.secrets import KeyBytes
from strongroom.services import data_key_pairs
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import material_id_of

Request = dict[str, Any]
Response = dict[str, Any]


def _pair(
    core: Core, ctx: RequestContext, req: Request, operation: Operation
) -> tuple[KeyBytes, Response]:
    pair = data_key_pairs.generate_data_key_pair(
        core,
        ctx,
        req["KeyId"],
        DataKeyPairSpec(req["KeyPairSpec"]),
        context=req.get("EncryptionContext"),
        recipient="Recipient" in req,
        dry_run=req.get("DryRun", False),
        operation=operation,
    )
    sealed = pair.sealed_private_key
    assert sealed.version is not None  # sealed under a symmetric encryption key
    response = {
        "PrivateKeyCiphertextBlob": sealed.ciphertext,
        "PublicKey": pair.public_key,
        "KeyId": sealed.key.arn,
        "KeyPairSpec": req["KeyPairSpec"],
        "KeyMaterialId": material_id_of(core, sealed.key, sealed.version),
    }
    return pair.private_key, response


def generate_data_key_pair(core: Core, ctx: RequestContext, req: Request) -> Response:
    private_key, response = _pair(core, ctx, req, Operation.GENERATE_DATA_KEY_PAIR)
    return {**response, "PrivateKeyPlaintext": private_key}


def generate_data_key_pair_without_plaintext(
    core: Core, ctx: RequestContext, req: Request
) -> Response:
    return _pair(core, ctx, req, Operation.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT)[1]
