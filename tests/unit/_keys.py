"""The symmetric key record the unit tests of the pure layers build on, the account's root
caller, and a root key of format 0x02 to re-wrap a database under."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.crypto.wrap import WRAP_V2, key_id
from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.models import Caller, Key, Principal

ACCOUNT = "111122223333"
ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROOT = Caller(  # the account's root, calling from this host
    Principal(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT, "root", "root"),
    "AKIA",
    "us-east-1",
    "127.0.0.1",
    "test",
    (),
)


def symmetric_key(policy: str = "{}", state: KeyState = KeyState.ENABLED) -> Key:
    """A customer managed SYMMETRIC_DEFAULT key ``ARN`` with ``policy``, in ``state``."""
    return Key(
        arn=ARN,
        account=ACCOUNT,
        region="us-east-1",
        state=state,
        description="",
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        origin=Origin.AWS_KMS,
        key_manager=KeyManager.CUSTOMER,
        multi_region=False,
        policy=policy,
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
        current_version=1,
    )


class SoftwareV2Key:
    """A root key that writes format 0x02 in software, as a token key lays it out: what the
    tests re-wrap a database under (the token itself is tested in tests/unit/keystores)."""

    def __init__(self) -> None:
        self._aead = AESGCM(os.urandom(32))
        self._check = os.urandom(32)
        self.unwraps = 0

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        head = bytes((WRAP_V2,)) + key_id(self._check)
        return head + nonce + self._aead.encrypt(nonce, secret, aad)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        self.unwraps += 1
        return self._aead.decrypt(wrapped[9:21], wrapped[21:], aad)

    def check_value(self) -> bytes:
        return self._check
