"""Key ids, ARNs and alias names in their AWS forms."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass

PARTITION = "aws"

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MRK_RE = re.compile(r"^mrk-[0-9a-f]{32}$")
_ARN_RE = re.compile(
    r"^arn:(?P<partition>[a-z-]+):kms:(?P<region>[a-z0-9-]*):(?P<account>\d*):"
    r"(?P<kind>key|alias)/(?P<name>.+)$"
)
ACCOUNT_RE = re.compile(r"^\d{12}$")


def new_key_id(multi_region: bool = False) -> str:
    """A fresh key id: a UUID, or ``mrk-`` and 32 hex digits for a multi-Region key."""
    return f"mrk-{uuid.uuid4().hex}" if multi_region else str(uuid.uuid4())


def is_key_id(value: str) -> bool:
    return bool(_UUID_RE.match(value) or _MRK_RE.match(value))


def key_arn(region: str, account: str, key_id: str) -> str:
    return f"arn:{PARTITION}:kms:{region}:{account}:key/{key_id}"


def alias_arn(region: str, account: str, alias_name: str) -> str:
    """``alias_name`` includes its ``alias/`` prefix, as AWS ARNs do."""
    return f"arn:{PARTITION}:kms:{region}:{account}:{alias_name}"


def account_root_arn(account: str) -> str:
    return f"arn:{PARTITION}:iam::{account}:root"


ROLE_ARN_RE = re.compile(
    r"^arn:aws:iam::(?P<account>\d{12}):role/(?P<name>[A-Za-z0-9+=,.@_-]{1,64})$"
)


def role_unique_id(role_arn: str) -> str:
    """The role's unique id in AWS's form (``AROA`` and 17 characters), derived from its
    ARN so that every process and node gives the same one."""
    digest = base64.b32encode(hashlib.sha256(role_arn.encode()).digest()).decode()
    return "AROA" + digest[:17]


def assumed_role_arn(role_arn: str, session_name: str) -> str:
    """``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` for a session of ``role_arn``."""
    account = role_arn.split(":")[4]
    role = role_arn.rsplit("/", 1)[1]
    return f"arn:{PARTITION}:sts::{account}:assumed-role/{role}/{session_name}"


@dataclass(frozen=True, slots=True)
class KmsArn:
    region: str
    account: str
    kind: str  # "key" or "alias"
    name: str  # key id, or alias name with its "alias/" prefix

    @property
    def text(self) -> str:
        if self.kind == "key":
            return key_arn(self.region, self.account, self.name)
        return alias_arn(self.region, self.account, self.name)


def parse_arn(value: str) -> KmsArn | None:
    """Parse a KMS key or alias ARN, or return None when ``value`` is not one."""
    m = _ARN_RE.match(value)
    if m is None:
        return None
    name = m["name"] if m["kind"] == "key" else f"alias/{m['name']}"
    return KmsArn(region=m["region"], account=m["account"], kind=m["kind"], name=name)
