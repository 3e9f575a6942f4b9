"""Storage records that are not domain objects, and the port the services use."""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.domain.models import Principal


@dataclass(frozen=True, slots=True)
class AccessKeyRecord:
    access_key_id: str
    principal: Principal
    wrapped_secret: bytes = field(repr=False)
    status: str  # "Active" or "Inactive"


@dataclass(frozen=True, slots=True)
class AuditRow:
    event_id: str
    event_time: float
    event_name: str
    region: str
    principal_arn: str | None
    key_arn: str | None
    error_code: str | None
    chain: str
    prev_hash: str
    hash: str
    body: str
