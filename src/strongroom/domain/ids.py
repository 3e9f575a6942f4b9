"""Key ids, ARNs, alias names, grant ids and grant tokens in their AWS forms."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
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


def _unique_id(prefix: str, arn: str) -> str:
    """An IAM unique id: ``prefix`` and 17 characters, derived from ``arn`` so that every
    process and node gives the same one (unlike AWS's, a principal deleted and made again
    under the same name gets the same id back)."""
    digest = base64.b32encode(hashlib.sha256(arn.encode()).digest()).decode()
    return prefix + digest[:17]


def role_unique_id(role_arn: str) -> str:
    """The role's unique id in AWS's form (``AROA`` and 17 characters)."""
    return _unique_id("AROA", role_arn)


def user_unique_id(user_arn: str) -> str:
    """The user's unique id in AWS's form (``AIDA`` and 17 characters; IAM "Unique
    identifiers": AIDA for a user, AROA for a role)."""
    return _unique_id("AIDA", user_arn)


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


def lock_order(arn: str) -> tuple[str, str, str]:
    """Where the row of the key ``arn`` comes in the order every transaction locks key rows
    in: by account, then key id (a multi-Region key's primary and replicas together), then
    Region. (An ARN that is not a key's sorts by itself, after the keys of no account.)"""
    parsed = parse_arn(arn)
    if parsed is None or parsed.kind != "key":
        return ("", "", arn)
    return (parsed.account, parsed.name, parsed.region)


_GRANT_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_TOKEN_VERSION = 1
_TOKEN_NONCE_BYTES = 16
_TOKEN_BYTES = 1 + 32 + _TOKEN_NONCE_BYTES


def new_grant_id() -> str:
    """A fresh grant id: 64 hex digits, as AWS's are."""
    return secrets.token_hex(32)


def is_grant_id(value: str) -> bool:
    return _GRANT_ID_RE.match(value) is not None


def grant_token(grant_id: str) -> str:
    """A new grant token for the grant ``grant_id``.

    Base64 of 49 bytes: a format version (1 byte, 1), the grant id (32 bytes) and 16 random
    bytes, so every token is new ("the returned grant token is unique with every CreateGrant
    request", ``CreateGrantRequest.Name`` doc) while all of one grant's tokens name it. A token
    is not secret and gives no permission of its own: it names a grant.
    """
    nonce = secrets.token_bytes(_TOKEN_NONCE_BYTES)
    raw = bytes([_TOKEN_VERSION]) + bytes.fromhex(grant_id) + nonce
    return base64.b64encode(raw).decode("ascii")


def token_grant_id(token: str) -> str | None:
    """The grant id a grant token names, or None when ``token`` is not a grant token."""
    try:
        raw = base64.b64decode(token.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    if len(raw) != _TOKEN_BYTES or raw[0] != _TOKEN_VERSION:
        return None
    return raw[1:33].hex()


CLUSTER_ID_RE = re.compile(r"^cluster-[2-7a-zA-Z]{11,16}$")
"""A CloudHSM cluster id (``CloudHsmClusterIdType``'s pattern, anchored)."""

_CUSTOM_KEY_STORE_ID_RE = re.compile(r"^cks-[0-9a-f]{17}$")


def new_custom_key_store_id() -> str:
    """A fresh custom key store id in AWS's form: ``cks-`` and 17 hex digits."""
    return "cks-" + secrets.token_hex(9)[:17]


def is_custom_key_store_id(value: str) -> bool:
    return bool(_CUSTOM_KEY_STORE_ID_RE.match(value))


def new_cluster_id() -> str:
    """A fresh cluster id in AWS CloudHSM's form: ``cluster-`` and 11 base32 letters."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "cluster-" + "".join(secrets.choice(alphabet) for _ in range(11))
