"""Handlers for Encrypt, Decrypt, ReEncrypt, GenerateDataKey* and GenerateRandom."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import DataKeySpec, EncryptionAlgorithm, by_value
from strongroom.domain.models import Key
from strongroom.domain.operations import Operation
from strongroom.services import encryption
from strongroom.services.core import Core, RequestContext
from strongroom.services.material import material_id_of

Request = dict[str, Any]
Response = dict[str, Any]


_ALGORITHMS = by_value(EncryptionAlgorithm)
_DATA_KEY_SPECS = by_value(DataKeySpec)


def _algorithm(req: Request, name: str = "EncryptionAlgorithm") -> EncryptionAlgorithm | None:
    value = req.get(name)
    return None if value is None else _ALGORITHMS[value]


def _material_id(core: Core, key: Key, version: int | None) -> str | None:
    # KeyMaterialId is "present only when the operation uses a symmetric encryption KMS key".
    return None if version is None else material_id_of(core, key, version)


def encrypt(core: Core, ctx: RequestContext, req: Request) -> Response:
    sealed = encryption.encrypt(
        core,
        ctx,
        req["KeyId"],
        req["Plaintext"],
        context=req.get("EncryptionContext"),
        algorithm=_algorithm(req),
        dry_run=req.get("DryRun", False),
    )
    return {
        "CiphertextBlob": sealed.ciphertext,
        "KeyId": sealed.key.arn,
        "EncryptionAlgorithm": str(sealed.algorithm),  # its value: cheaper than .value
    }


def decrypt(core: Core, ctx: RequestContext, req: Request) -> Response:
    opened = encryption.decrypt(
        core,
        ctx,
        req["CiphertextBlob"],
        context=req.get("EncryptionContext"),
        key_id=req.get("KeyId"),
        algorithm=_algorithm(req),
        dry_run=req.get("DryRun", False),
    )
    return {
        "KeyId": opened.key.arn,
        "Plaintext": opened.plaintext,
        "EncryptionAlgorithm": str(opened.algorithm),
        "KeyMaterialId": _material_id(core, opened.key, opened.version),
    }


def re_encrypt(core: Core, ctx: RequestContext, req: Request) -> Response:
    opened, sealed = encryption.re_encrypt(
        core,
        ctx,
        req["CiphertextBlob"],
        req["DestinationKeyId"],
        source_context=req.get("SourceEncryptionContext"),
        destination_context=req.get("DestinationEncryptionContext"),
        source_key_id=req.get("SourceKeyId"),
        source_algorithm=_algorithm(req, "SourceEncryptionAlgorithm"),
        destination_algorithm=_algorithm(req, "DestinationEncryptionAlgorithm"),
        dry_run=req.get("DryRun", False),
    )
    return {
        "CiphertextBlob": sealed.ciphertext,
        "SourceKeyId": opened.key.arn,
        "KeyId": sealed.key.arn,
        "SourceEncryptionAlgorithm": opened.algorithm.value,
        "DestinationEncryptionAlgorithm": sealed.algorithm.value,
        "SourceKeyMaterialId": _material_id(core, opened.key, opened.version),
        "DestinationKeyMaterialId": _material_id(core, sealed.key, sealed.version),
    }


def _data_key(
    core: Core, ctx: RequestContext, req: Request, operation: Operation
) -> tuple[bytes, Response]:
    plaintext, sealed = encryption.generate_data_key(
        core,
        ctx,
        req["KeyId"],
        key_spec=_DATA_KEY_SPECS[req["KeySpec"]] if "KeySpec" in req else None,
        number_of_bytes=req.get("NumberOfBytes"),
        context=req.get("EncryptionContext"),
        dry_run=req.get("DryRun", False),
        operation=operation,
    )
    response = {
        "CiphertextBlob": sealed.ciphertext,
        "KeyId": sealed.key.arn,
        "KeyMaterialId": _material_id(core, sealed.key, sealed.version),
    }
    return plaintext, response


def generate_data_key(core: Core, ctx: RequestContext, req: Request) -> Response:
    plaintext, response = _data_key(core, ctx, req, Operation.GENERATE_DATA_KEY)
    return {**response, "Plaintext": plaintext}


def generate_data_key_without_plaintext(core: Core, ctx: RequestContext, req: Request) -> Response:
    return _data_key(core, ctx, req, Operation.GENERATE_DATA_KEY_WITHOUT_PLAINTEXT)[1]


def generate_random(core: Core, ctx: RequestContext, req: Request) -> Response:
    data = encryption.generate_random(
        core, ctx, req.get("NumberOfBytes"), req.get("CustomKeyStoreId")
    )
    return {"Plaintext": data}
