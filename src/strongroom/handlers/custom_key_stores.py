"""Handlers for custom key stores (AWS_CLOUDHSM on PKCS#11 tokens)."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import ConnectionState, CustomKeyStoreType
from strongroom.domain.models import CustomKeyStore
from strongroom.handlers.shapes import page
from strongroom.services import custom_key_stores as stores
from strongroom.services.core import Core, RequestContext

Request = dict[str, Any]
Response = dict[str, Any]


def _entry(store: CustomKeyStore) -> dict[str, Any]:
    """A ``CustomKeyStoresListEntry`` of an AWS_CLOUDHSM store: ConnectionErrorCode only
    when FAILED, as AWS shows it."""
    entry: dict[str, Any] = {
        "CustomKeyStoreId": store.store_id,
        "CustomKeyStoreName": store.name,
        "CloudHsmClusterId": store.cluster_id,
        "TrustAnchorCertificate": store.trust_anchor,
        "ConnectionState": store.connection_state.value,
        "CreationDate": store.creation_date,
        "CustomKeyStoreType": store.store_type.value,
    }
    if store.connection_state is ConnectionState.FAILED and store.connection_error_code:
        entry["ConnectionErrorCode"] = store.connection_error_code.value
    return entry


def create_custom_key_store(core: Core, ctx: RequestContext, req: Request) -> Response:
    store = stores.create_custom_key_store(
        core,
        ctx,
        req["CustomKeyStoreName"],
        CustomKeyStoreType(req.get("CustomKeyStoreType", "AWS_CLOUDHSM")),
        stores.CloudHsmSettings(
            cluster_id=req.get("CloudHsmClusterId"),
            trust_anchor=req.get("TrustAnchorCertificate"),
            password=req.get("KeyStorePassword"),
        ),
    )
    return {"CustomKeyStoreId": store.store_id}


def describe_custom_key_stores(core: Core, ctx: RequestContext, req: Request) -> Response:
    found, marker = stores.describe_custom_key_stores(
        core,
        ctx,
        store_id=req.get("CustomKeyStoreId"),
        name=req.get("CustomKeyStoreName"),
        limit=min(req.get("Limit", 50), 100),
        marker=req.get("Marker"),
    )
    return page("CustomKeyStores", [_entry(s) for s in found], marker)


def connect_custom_key_store(core: Core, ctx: RequestContext, req: Request) -> Response:
    stores.connect_custom_key_store(core, ctx, req["CustomKeyStoreId"])
    return {}


def disconnect_custom_key_store(core: Core, ctx: RequestContext, req: Request) -> Response:
    stores.disconnect_custom_key_store(core, ctx, req["CustomKeyStoreId"])
    return {}


def update_custom_key_store(core: Core, ctx: RequestContext, req: Request) -> Response:
    stores.update_custom_key_store(
        core,
        ctx,
        req["CustomKeyStoreId"],
        new_name=req.get("NewCustomKeyStoreName"),
        password=req.get("KeyStorePassword"),
        cluster_id=req.get("CloudHsmClusterId"),
    )
    return {}


def delete_custom_key_store(core: Core, ctx: RequestContext, req: Request) -> Response:
    stores.delete_custom_key_store(core, ctx, req["CustomKeyStoreId"])
    return {}
