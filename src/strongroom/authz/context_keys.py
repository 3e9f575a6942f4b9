"""Condition-key values built from a request's parts: tags, Booleans, a key's own keys. Pure.

Names are lower-cased, as IAM compares condition key names case-insensitively.
"""

from __future__ import annotations

from collections.abc import Iterable

from strongroom.authz.conditions import ContextValue
from strongroom.domain.models import Key

RESOURCE_TAG = "aws:resourcetag/"
RESOURCE_ALIASES = "kms:resourcealiases"
VIA_SERVICE = "kms:viaservice"


def via_service(service: str, region: str) -> str:
    """The kms:ViaService value of requests that AWS service ``service`` makes to KMS on a
    principal's behalf in ``region``: ``<service>.<region>.amazonaws.com`` (AWS KMS
    "kms:ViaService")."""
    return f"{service}.{region}.amazonaws.com"


def flag(value: bool) -> str:
    """A Boolean condition value as IAM compares it."""
    return "true" if value else "false"


def request_tags(tags: Iterable[tuple[str, str]]) -> dict[str, ContextValue]:
    """aws:RequestTag/<k> for each (key, value) and aws:TagKeys, the keys as sent."""
    pairs = list(tags)
    context: dict[str, ContextValue] = {f"aws:requesttag/{k.lower()}": v for k, v in pairs}
    context["aws:tagkeys"] = tuple(k for k, _ in pairs)
    return context


def key_context(key: Key) -> dict[str, ContextValue]:
    """The condition keys of a KMS key resource: kms:KeySpec, kms:KeyUsage, kms:KeyOrigin,
    kms:MultiRegion, kms:MultiRegionKeyType (multi-Region keys only) and the deprecated
    kms:CustomerMasterKeySpec and kms:CustomerMasterKeyUsage (AWS KMS "Condition keys")."""
    context: dict[str, ContextValue] = {
        "kms:keyspec": key.key_spec.value,
        "kms:keyusage": key.key_usage.value,
        "kms:keyorigin": key.origin.value,
        "kms:multiregion": flag(key.multi_region),
        "kms:customermasterkeyspec": key.key_spec.value,
        "kms:customermasterkeyusage": key.key_usage.value,
    }
    if key.multi_region_type is not None:
        context["kms:multiregionkeytype"] = key.multi_region_type.value
    return context
