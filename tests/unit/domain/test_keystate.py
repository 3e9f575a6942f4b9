"""The key-state table answers as AWS's key-state page says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strongroom.domain.enums import KeyManager, KeySpec, KeyState, KeyUsage, Origin
from strongroom.domain.errors import DisabledException, KMSInvalidStateException
from strongroom.domain.keystate import TABLE, check_state
from strongroom.domain.models import Key

pytestmark = pytest.mark.unit

ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def key_in(state: KeyState) -> Key:
    return Key(
        arn=ARN,
        key_id=ARN.rsplit("/", 1)[1],
        account="111122223333",
        region="us-east-1",
        state=state,
        description="",
        key_usage=KeyUsage.ENCRYPT_DECRYPT,
        key_spec=KeySpec.SYMMETRIC_DEFAULT,
        origin=Origin.AWS_KMS,
        key_manager=KeyManager.CUSTOMER,
        multi_region=False,
        policy="{}",
        creation_date=datetime.now(UTC),
        current_version=1,
    )


@pytest.mark.parametrize(
    ("operation", "state", "error", "message"),
    [
        ("Encrypt", KeyState.DISABLED, DisabledException, f"{ARN} is disabled."),
        (
            "Decrypt",
            KeyState.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        (
            "GenerateDataKey",
            KeyState.PENDING_IMPORT,
            KMSInvalidStateException,
            f"{ARN} is pending import.",
        ),
        ("Encrypt", KeyState.UNAVAILABLE, KMSInvalidStateException, f"{ARN} is unavailable."),
        (
            "CancelKeyDeletion",
            KeyState.ENABLED,
            KMSInvalidStateException,
            f"{ARN} is not pending deletion.",
        ),
        (
            "EnableKey",
            KeyState.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        (
            "TagResource",
            KeyState.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        (
            "ScheduleKeyDeletion",
            KeyState.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
    ],
)
def test_refused_states_raise_aws_errors(
    operation: str, state: KeyState, error: type, message: str
) -> None:
    with pytest.raises(error) as info:
        check_state(operation, key_in(state))
    assert info.value.message == message


@pytest.mark.parametrize(
    ("operation", "state"),
    [
        ("DescribeKey", KeyState.PENDING_DELETION),
        ("DisableKey", KeyState.DISABLED),
        ("EnableKey", KeyState.DISABLED),
        ("CancelKeyDeletion", KeyState.PENDING_DELETION),
        ("DeleteAlias", KeyState.PENDING_DELETION),
        ("CreateAlias", KeyState.DISABLED),
        ("Encrypt", KeyState.ENABLED),
        ("ScheduleKeyDeletion", KeyState.DISABLED),
    ],
)
def test_allowed_states_pass(operation: str, state: KeyState) -> None:
    check_state(operation, key_in(state))


def test_every_crypto_operation_refuses_a_disabled_key() -> None:
    crypto = [
        "Encrypt",
        "Decrypt",
        "ReEncrypt",
        "GenerateDataKey",
        "GenerateDataKeyWithoutPlaintext",
        "Sign",
        "Verify",
        "GenerateMac",
        "VerifyMac",
        "GetPublicKey",
        "DeriveSharedSecret",
        "Encapsulate",
        "Decapsulate",
    ]
    for operation in crypto:
        assert KeyState.DISABLED in TABLE[operation], operation
