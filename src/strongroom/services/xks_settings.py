"""The XKS proxy members of Create and UpdateCustomKeyStore, and their rules.

The protocol layer checks each member against the KMS model (lengths, alphabets, the
URI path's pattern, the access key id's and secret's patterns), except the pattern of
XksProxyUriEndpoint (``protocol.model.WIDENED``), which is checked here: AWS's pattern is
``^https://[a-zA-Z0-9.-]+$``; this server also accepts a port (``https://host:8443``),
and ``http://`` for a proxy on a loopback address (127.0.0.0/8, ``localhost``, ``[::1]``)
so that a proxy on the same machine needs no TLS. Amazon VPC endpoint services do not
exist here: XksProxyConnectivity VPC_ENDPOINT_SERVICE is refused with
UnsupportedOperationException.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from strongroom.domain.enums import CustomKeyStoreType, XksProxyConnectivity
from strongroom.domain.errors import UnsupportedOperationException, ValidationException
from strongroom.domain.models import XksProxySettings

AWS_ENDPOINT_PATTERN = "^https://[a-zA-Z0-9.-]+$"
_ENDPOINT = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-zA-Z0-9.-]+|\[::1\])(?::(?P<port>[0-9]{1,5}))?", re.ASCII
)
_ENDPOINT_RULE = (
    f"https://<host> as AWS's pattern {AWS_ENDPOINT_PATTERN} has it, optionally followed by "
    ":<port> (1 to 65535); http:// only for a loopback host (127.0.0.0/8, localhost, [::1])"
)


@dataclass(frozen=True, slots=True)
class XksRequest:
    """The XKS proxy members of a Create or UpdateCustomKeyStore request (None: absent)."""

    uri_endpoint: str | None = None
    uri_path: str | None = None
    connectivity: XksProxyConnectivity | None = None
    vpc_endpoint_service_name: str | None = None
    vpc_endpoint_service_owner: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    def given(self) -> list[str]:
        """The AWS names of the members the request has."""
        members = {
            "XksProxyUriEndpoint": self.uri_endpoint,
            "XksProxyUriPath": self.uri_path,
            "XksProxyConnectivity": self.connectivity,
            "XksProxyVpcEndpointServiceName": self.vpc_endpoint_service_name,
            "XksProxyVpcEndpointServiceOwner": self.vpc_endpoint_service_owner,
            "XksProxyAuthenticationCredential": self.access_key_id or self.secret_access_key,
        }
        return [name for name, value in members.items() if value is not None]


def refuse_members(members: list[str], store_type: str) -> None:
    """ValidationException naming ``members`` (of the other type) when there are any."""
    if members:
        raise ValidationException(
            f"{', '.join(members)} {'is' if len(members) == 1 else 'are'} not valid for a "
            f"custom key store of type {store_type}."
        )


def require_members(given: list[tuple[str, object]], store_type: str) -> None:
    """ValidationException naming the first of ``given`` (name, value) whose value is None:
    the members a custom key store of ``store_type`` needs."""
    for member, value in given:
        if value is None:
            raise ValidationException(
                f"{member} is required for a custom key store of type {store_type}."
            )


def refuse_vpc(xks: XksRequest) -> None:
    """UnsupportedOperationException for VPC_ENDPOINT_SERVICE connectivity or its members:
    this server has no Amazon VPC to reach a proxy through."""
    vpc = [
        name
        for name in ("XksProxyVpcEndpointServiceName", "XksProxyVpcEndpointServiceOwner")
        if name in xks.given()
    ]
    if xks.connectivity is XksProxyConnectivity.VPC_ENDPOINT_SERVICE or vpc:
        said = f" ({', '.join(vpc)})" if vpc else ""
        raise UnsupportedOperationException(
            f"XksProxyConnectivity VPC_ENDPOINT_SERVICE{said} is not supported: this server "
            "reaches an external key store proxy only at its URI endpoint. Use "
            "XksProxyConnectivity PUBLIC_ENDPOINT with the proxy's XksProxyUriEndpoint."
        )


def check_endpoint(uri: str) -> None:
    """The rule of XksProxyUriEndpoint (module docstring); ValidationException otherwise."""
    found = _ENDPOINT.fullmatch(uri)
    ok = found is not None
    if found is not None:
        port = found["port"]
        if port is not None and not 1 <= int(port) <= 65535:
            ok = False
        if found["scheme"] == "http" and not _loopback(found["host"]):
            ok = False
    if not ok:
        raise ValidationException(
            f"1 validation error detected: Value '{uri}' at 'xksProxyUriEndpoint' failed to "
            f"satisfy constraint: Member must be {_ENDPOINT_RULE}."
        )


def _loopback(host: str) -> bool:
    if host in ("localhost", "[::1]"):
        return True
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def new_settings(xks: XksRequest) -> tuple[XksProxySettings, str]:
    """The proxy settings and secret access key of a new external key store. Raises
    ValidationException (a member missing, the endpoint's rule) and
    UnsupportedOperationException (VPC_ENDPOINT_SERVICE)."""
    refuse_vpc(xks)
    require_members(
        [
            ("XksProxyUriEndpoint", xks.uri_endpoint),
            ("XksProxyUriPath", xks.uri_path),
            ("XksProxyAuthenticationCredential", xks.access_key_id),
            ("XksProxyConnectivity", xks.connectivity),
        ],
        CustomKeyStoreType.EXTERNAL_KEY_STORE.value,
    )
    assert xks.uri_endpoint and xks.uri_path and xks.access_key_id and xks.connectivity
    assert xks.secret_access_key is not None  # the protocol requires both credential parts
    check_endpoint(xks.uri_endpoint)
    settings = XksProxySettings(
        uri_endpoint=xks.uri_endpoint,
        uri_path=xks.uri_path,
        connectivity=xks.connectivity,
        access_key_id=xks.access_key_id,
    )
    return settings, xks.secret_access_key


def updated_settings(current: XksProxySettings, xks: XksRequest) -> XksProxySettings:
    """``current`` with the members ``xks`` gives. Raises ValidationException (the
    endpoint's rule) and UnsupportedOperationException (VPC_ENDPOINT_SERVICE)."""
    refuse_vpc(xks)
    if xks.uri_endpoint is not None:
        check_endpoint(xks.uri_endpoint)
    return XksProxySettings(
        uri_endpoint=xks.uri_endpoint or current.uri_endpoint,
        uri_path=xks.uri_path or current.uri_path,
        connectivity=xks.connectivity or current.connectivity,
        access_key_id=xks.access_key_id or current.access_key_id,
    )
