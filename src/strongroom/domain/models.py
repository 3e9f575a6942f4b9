"""Frozen domain records: keys, key material versions, aliases, principals."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.secrets import KeyBytes


@dataclass(frozen=True, slots=True)
class Key:
    """A KMS key's metadata; its material lives in ``KeyMaterial`` versions."""

    arn: str
    key_id: str
    account: str
    region: str
    state: KeyState
    description: str
    key_usage: KeyUsage
    key_spec: KeySpec
    origin: Origin
    key_manager: KeyManager
    multi_region: bool
    policy: str
    creation_date: datetime
    current_version: int
    deletion_date: datetime | None = None
    pending_window_days: int | None = None

    def evolve(self, **changes: object) -> Key:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """One version of a key's material, unwrapped (held only in memory)."""

    key_arn: str
    version: int
    material: KeyBytes
    created: datetime


@dataclass(frozen=True, slots=True)
class Alias:
    arn: str
    name: str  # with its "alias/" prefix
    account: str
    region: str
    target_key_id: str
    creation_date: datetime
    last_updated_date: datetime


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Principal:
    """An identity: the account root, a user, a role, or a role session (ARN of the AWS
    form; a session's is ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``)."""

    arn: str
    account: str
    kind: str  # "root", "user", "role" or "assumed-role"
    name: str  # for a role session, "ROLE/SESSION"


@dataclass(frozen=True, slots=True)
class RoleSession:
    """The role behind temporary credentials (STS AssumeRole), and their lifetime."""

    role_arn: str
    role_id: str  # AROA..., the role's unique id
    session_name: str
    created: datetime
    expiration: datetime

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[1]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request, and from where; the output of authentication.

    ``identity_policies`` are the JSON texts of the principal's inline IAM policies and
    ``tags`` its IAM tags as sorted (key, value) pairs (for a role session: the role's).
    ``session`` is set when the request was signed with temporary credentials."""

    principal: Principal
    access_key_id: str
    region: str
    source_ip: str
    user_agent: str
    identity_policies: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    session: RoleSession | None = None
