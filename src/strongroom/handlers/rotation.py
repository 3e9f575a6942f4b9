"""Handlers for key rotation: Enable/DisableKeyRotation, GetKeyRotationStatus,
RotateKeyOnDemand and ListKeyRotations."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import IncludeKeyMaterial, Origin
from strongroom.domain.models import Key, MaterialVersion
from strongroom.handlers.shapes import page
from strongroom.services import rotation
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]

DEFAULT_LIMIT = 100  # ListKeyRotationsRequest.Limit doc: "defaults to 100"


def enable_key_rotation(core: Core, ctx: RequestContext, req: Request) -> Response:
    rotation.enable_rotation(core, ctx, req["KeyId"], req.get("RotationPeriodInDays"))
    return {}


def disable_key_rotation(core: Core, ctx: RequestContext, req: Request) -> Response:
    rotation.disable_rotation(core, ctx, req["KeyId"])
    return {}


def get_key_rotation_status(core: Core, ctx: RequestContext, req: Request) -> Response:
    status = rotation.rotation_status(core, ctx, req["KeyId"])
    return {
        "KeyRotationEnabled": status.enabled,
        "KeyId": status.key.key_id,
        "RotationPeriodInDays": status.period_days,
        "NextRotationDate": status.next_rotation_date,
    }


def rotate_key_on_demand(core: Core, ctx: RequestContext, req: Request) -> Response:
    return {"KeyId": rotation.rotate_on_demand(core, ctx, req["KeyId"]).arn}


def list_key_rotations(core: Core, ctx: RequestContext, req: Request) -> Response:
    include = req.get("IncludeKeyMaterial")
    key, versions, marker = rotation.list_rotations(
        core,
        ctx,
        req["KeyId"],
        include=None if include is None else IncludeKeyMaterial(include),
        limit=req.get("Limit", DEFAULT_LIMIT),
        marker=req.get("Marker"),
    )
    return page("Rotations", [rotations_entry(key, v) for v in versions], marker)


def rotations_entry(key: Key, info: MaterialVersion) -> dict[str, Any]:
    """A ``RotationsListEntry``; the import fields only for a key with imported material."""
    entry: dict[str, Any] = {
        "KeyId": key.key_id,
        "KeyMaterialId": info.material_id,
        "KeyMaterialState": info.state.value,
        "RotationDate": info.rotation_date,
        "RotationType": None if info.rotation_type is None else info.rotation_type.value,
    }
    if key.origin is Origin.EXTERNAL:
        entry["ImportState"] = None if info.import_state is None else info.import_state.value
        entry["ExpirationModel"] = (
            None if info.expiration_model is None else info.expiration_model.value
        )
        entry["ValidTo"] = info.valid_to
        entry["KeyMaterialDescription"] = info.description
    return entry
