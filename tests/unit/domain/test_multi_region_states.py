"""Multi-Region key types and the key-state rows of ReplicateKey, UpdatePrimaryRegion and the
multi-Region states (AWS KMS Developer Guide, "Key states of AWS KMS keys")."""

from __future__ import annotations

import pytest

from strongroom.domain.enums import KeyState, MultiRegionKeyType
from strongroom.domain.errors import DisabledException, KMSInvalidStateException
from strongroom.domain.models import Key
from strongroom.domain.operations import check_state

from .test_keystate import key_in

pytestmark = pytest.mark.unit

KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"


def mrk(region: str, primary_region: str | None, state: KeyState = KeyState.ENABLED) -> Key:
    """The related key in ``region`` of a set whose primary is in ``primary_region`` (None:
    a single-Region key), in ``state``."""
    return key_in(state).evolve(
        arn=f"arn:aws:kms:{region}:111122223333:key/{KEY_ID}",
        region=region,
        multi_region=primary_region is not None,
        primary_region=primary_region,
    )


def test_multi_region_type_follows_the_primary_region() -> None:
    assert mrk("us-east-1", "us-east-1").multi_region_type is MultiRegionKeyType.PRIMARY
    assert mrk("eu-west-1", "us-east-1").multi_region_type is MultiRegionKeyType.REPLICA
    assert mrk("us-east-1", None).multi_region_type is None


@pytest.mark.parametrize(
    ("operation", "state", "error", "text"),
    [
        ("ReplicateKey", KeyState.DISABLED, DisabledException, "is disabled."),
        (
            "ReplicateKey",
            KeyState.PENDING_DELETION,
            KMSInvalidStateException,
            "is pending deletion.",
        ),
        (
            "ReplicateKey",
            KeyState.PENDING_REPLICA_DELETION,
            KMSInvalidStateException,
            "is pending replica deletion.",
        ),
        ("ReplicateKey", KeyState.PENDING_IMPORT, KMSInvalidStateException, "is pending import."),
        ("ReplicateKey", KeyState.UPDATING, KMSInvalidStateException, "is updating."),
        ("UpdatePrimaryRegion", KeyState.DISABLED, DisabledException, "is disabled."),
        ("UpdatePrimaryRegion", KeyState.CREATING, KMSInvalidStateException, "is creating."),
        (
            "UpdatePrimaryRegion",
            KeyState.PENDING_REPLICA_DELETION,
            KMSInvalidStateException,
            "is pending replica deletion.",
        ),
        ("Encrypt", KeyState.CREATING, KMSInvalidStateException, "is creating."),
        (
            "Decrypt",
            KeyState.PENDING_REPLICA_DELETION,
            KMSInvalidStateException,
            "is pending replica deletion.",
        ),
        ("EnableKey", KeyState.CREATING, KMSInvalidStateException, "is creating."),
        ("DisableKey", KeyState.UPDATING, KMSInvalidStateException, "is updating."),
        ("ScheduleKeyDeletion", KeyState.UPDATING, KMSInvalidStateException, "is updating."),
    ],
)
def test_refused_multi_region_states(
    operation: str, state: KeyState, error: type, text: str
) -> None:
    key = mrk("us-east-1", "us-east-1", state)
    with pytest.raises(error) as info:
        check_state(operation, key)
    assert info.value.message == f"{key.arn} {text}"


@pytest.mark.parametrize(
    ("operation", "state"),
    [
        ("ReplicateKey", KeyState.ENABLED),
        ("UpdatePrimaryRegion", KeyState.ENABLED),
        ("UpdatePrimaryRegion", KeyState.UPDATING),
        ("CancelKeyDeletion", KeyState.PENDING_REPLICA_DELETION),
        ("Encrypt", KeyState.UPDATING),
        ("DescribeKey", KeyState.CREATING),
        ("TagResource", KeyState.CREATING),
        ("UpdateKeyDescription", KeyState.CREATING),
        ("ScheduleKeyDeletion", KeyState.CREATING),
        ("PutKeyPolicy", KeyState.PENDING_REPLICA_DELETION),
    ],
)
def test_allowed_multi_region_states(operation: str, state: KeyState) -> None:
    check_state(operation, mrk("us-east-1", "us-east-1", state))
