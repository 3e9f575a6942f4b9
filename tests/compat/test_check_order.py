"""The order of an operation's checks when a request fails more than one: authorization,
then the key's state (AWS's key-state table), then what the operation refuses of the key's
type. Each case names the source of the order it pins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from ._support import assert_kms_error

pytestmark = pytest.mark.compat


@dataclass(frozen=True)
class Case:
    spec: str
    usage: str
    state: str  # "Disabled" or "PendingDeletion"
    code: str
    message: str  # "{arn}" stands for the key's ARN


ROTATE_KEY_ON_DEMAND = [
    # Recorded against AWS: LocalStack's tests/aws/services/kms/test_kms.snapshot.json,
    # test_rotate_key_on_demand_raises_error_given_key_is_disabled (a disabled RSA_4096 key:
    # DisabledException "<key-arn> is disabled.", not the UnsupportedOperationException an
    # enabled RSA_4096 key gets in test_rotate_key_on_demand_raises_error_given_non_symmetric_key).
    Case("RSA_4096", "ENCRYPT_DECRYPT", "Disabled", "DisabledException", "{arn} is disabled."),
    # The same order for the other key specs RotateKeyOnDemand refuses (HMAC, ECC): the key
    # state decides first, as the recording above shows for RSA.
    Case("HMAC_256", "GENERATE_VERIFY_MAC", "Disabled", "DisabledException", "{arn} is disabled."),
    # A key pending deletion: KMSInvalidStateException, footnote [3] of the key-state table
    # ("Key states of AWS KMS keys", key-state.html) for the cryptographic operations, the row
    # RotateKeyOnDemand follows (the table predates it; shared/reference §1).
    Case(
        "ECC_NIST_P256",
        "SIGN_VERIFY",
        "PendingDeletion",
        "KMSInvalidStateException",
        "{arn} is pending deletion.",
    ),
]


@pytest.mark.parametrize("case", ROTATE_KEY_ON_DEMAND, ids=lambda c: f"{c.spec}-{c.state}")
def test_rotate_key_on_demand_checks_the_key_state_before_the_key_spec(
    kms: Any, case: Case
) -> None:
    key = kms.create_key(KeySpec=case.spec, KeyUsage=case.usage)["KeyMetadata"]
    if case.state == "Disabled":
        kms.disable_key(KeyId=key["KeyId"])
    else:
        kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert_kms_error(
        case.code,
        kms.rotate_key_on_demand,
        KeyId=key["KeyId"],
        message=case.message.format(arn=key["Arn"]),
    )
    # Enabled again, the key spec decides: UnsupportedOperationException (recorded against
    # AWS: test_rotate_key_on_demand_raises_error_given_non_symmetric_key, same snapshot file).
    if case.state == "Disabled":
        kms.enable_key(KeyId=key["KeyId"])
    else:
        kms.cancel_key_deletion(KeyId=key["KeyId"])
        kms.enable_key(KeyId=key["KeyId"])
    assert_kms_error("UnsupportedOperationException", kms.rotate_key_on_demand, KeyId=key["KeyId"])
