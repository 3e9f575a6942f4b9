"""The key-state table answers as AWS's key-state page says."""

from __future__ import annotations

import pytest

from strongroom.domain.enums import KeyState
from strongroom.domain.errors import DisabledException, KMSInvalidStateException
from strongroom.domain.models import Key
from strongroom.domain.operations import OPERATIONS, check_state

from .._keys import ARN, symmetric_key

pytestmark = pytest.mark.unit


def key_in(state: KeyState) -> Key:
    return symmetric_key(state=state)


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
        assert KeyState.DISABLED in OPERATIONS[operation].states, operation
