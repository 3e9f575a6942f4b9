"""The symmetric key record the unit tests of the pure layers build on, and the account's
root caller."""

from __future__ import annotations

from datetime import UTC, datetime

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
