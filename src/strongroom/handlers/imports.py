"""Handlers for imported key material: GetParametersForImport, ImportKeyMaterial and
DeleteImportedKeyMaterial."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import (
    ExpirationModel,
    ImportType,
    KeySpec,
    SpecFamily,
    WrappingAlgorithm,
    WrappingKeySpec,
)
from strongroom.services import imports
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def get_parameters_for_import(core: Core, ctx: RequestContext, req: Request) -> Response:
    params = imports.get_parameters_for_import(
        core,
        ctx,
        req["KeyId"],
        WrappingAlgorithm(req["WrappingAlgorithm"]),
        WrappingKeySpec(req["WrappingKeySpec"]),
    )
    return {
        "KeyId": params.key.arn,
        "ImportToken": params.import_token,
        "PublicKey": params.public_key,
        "ParametersValidTo": params.valid_to,
    }


def import_key_material(core: Core, ctx: RequestContext, req: Request) -> Response:
    model = req.get("ExpirationModel")
    import_type = req.get("ImportType")
    key, material_id = imports.import_key_material(
        core,
        ctx,
        req["KeyId"],
        import_token=req["ImportToken"],
        encrypted_material=req["EncryptedKeyMaterial"],
        expiration_model=None if model is None else ExpirationModel(model),
        valid_to=req.get("ValidTo"),
        import_type=None if import_type is None else ImportType(import_type),
        material_id=req.get("KeyMaterialId"),
        description=req.get("KeyMaterialDescription"),
    )
    return {"KeyId": key.arn, "KeyMaterialId": _exposed(key.key_spec, material_id)}


def delete_imported_key_material(core: Core, ctx: RequestContext, req: Request) -> Response:
    key, material_id = imports.delete_imported_material(
        core, ctx, req["KeyId"], req.get("KeyMaterialId")
    )
    return {"KeyId": key.arn, "KeyMaterialId": _exposed(key.key_spec, material_id)}


def _exposed(spec: KeySpec, material_id: str | None) -> str | None:
    # KeyMaterialId, like CurrentKeyMaterialId, is shown for symmetric encryption keys only.
    return material_id if spec.family is SpecFamily.SYMMETRIC else None
