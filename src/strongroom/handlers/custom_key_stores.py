"""Handlers for custom key stores (AWS_CLOUDHSM on PKCS#11 tokens, EXTERNAL_KEY_STORE
through an XKS proxy)."""

from __future__ import annotations

from typing import Any

from strongroom.domain.enums import ConnectionState, CustomKeyStoreType, XksProxyConnectivity
from strongroom.domain.models import CustomKeyStore
from strongroom.handlers.shapes import page
from strongroom.services import custom_key_stores as stores
from strongroom.services.core import Core, RequestContext
from strongroom.services.xks_settings import XksRequest

Request = dict[str, Any]
Response = dict[str, Any]


def _entry(store: CustomKeyStore) -> dict[str, Any]:
    """A ``CustomKeyStoresListEntry``: CloudHsmClusterId and TrustAnchorCertificate for an
    AWS_CLOUDHSM store, XksProxyConfiguration (never the secret access key) for an
    EXTERNAL_KEY_STORE; ConnectionErrorCode only when FAILED, as AWS shows it."""
    entry: dict[str, Any] = {
        "CustomKeyStoreId": store.store_id,
        "CustomKeyStoreName": store.name,
    }
    if store.xks is None:
        entry["CloudHsmClusterId"] = store.cluster_id
        entry["TrustAnchorCertificate"] = store.trust_anchor
    entry["ConnectionState"] = store.connection_state.value
    if store.connection_state is ConnectionState.FAILED and store.connection_error_code:
        entry["ConnectionErrorCode"] = store.connection_error_code.value
    entry["CreationDate"] = store.creation_date
    entry["CustomKeyStoreType"] = store.store_type.value
    if store.xks is not None:
        entry["XksProxyConfiguration"] = {
            "Connectivity": store.xks.connectivity.value,
            "AccessKeyId": store.xks.access_key_id,
            "UriEndpoint": store.xks.uri_endpoint,
            "UriPath": store.xks.uri_path,
        }
    return entry


def _xks(req: Request) -> XksRequest:
    """The XKS proxy members of a Create or UpdateCustomKeyStore request."""
    credential = req.get("XksProxyAuthenticationCredential") or {}
    connectivity = req.get("XksProxyConnectivity")
    return XksRequest(
        uri_endpoint=req.get("XksProxyUriEndpoint"),
        uri_path=req.get("XksProxyUriPath"),
        connectivity=None if connectivity is None else XksProxyConnectivity(connectivity),
        vpc_endpoint_service_name=req.get("XksProxyVpcEndpointServiceName"),
        vpc_endpoint_service_owner=req.get("XksProxyVpcEndpointServiceOwner"),
        access_key_id=credential.get("AccessKeyId"),
        secret_access_key=credential.get("RawSecretAccessKey"),
    )


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
        _xks(req),
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
        xks=_xks(req),
    )
    return {}


def delete_custom_key_store(core: Core, ctx: RequestContext, req: Request) -> Response:
    stores.delete_custom_key_store(core, ctx, req["CustomKeyStoreId"])
    return {}
