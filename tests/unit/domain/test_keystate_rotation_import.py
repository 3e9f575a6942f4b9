"""The key-state rows of rotation and import operations answer as AWS's key-state page says."""

from __future__ import annotations

import pytest

from strongroom.domain.enums import KeyState, Origin
from strongroom.domain.errors import DisabledException, KMSInvalidStateException
from strongroom.domain.models import Key
from strongroom.domain.operations import check_state

from .test_keystate import ARN
from .test_keystate import key_in as symmetric_key_in

pytestmark = pytest.mark.unit

S = KeyState


def key_in(state: KeyState) -> Key:
    """A key of imported material (origin EXTERNAL) in ``state``."""
    return symmetric_key_in(state).evolve(origin=Origin.EXTERNAL)


@pytest.mark.parametrize(
    ("operation", "state", "error", "message"),
    [
        ("EnableKeyRotation", S.DISABLED, DisabledException, f"{ARN} is disabled."),
        (
            "DisableKeyRotation",
            S.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        ("RotateKeyOnDemand", S.DISABLED, DisabledException, f"{ARN} is disabled."),
        (
            "RotateKeyOnDemand",
            S.PENDING_IMPORT,
            KMSInvalidStateException,
            f"{ARN} is pending import.",
        ),
        (
            "RotateKeyOnDemand",
            S.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        (
            "GetParametersForImport",
            S.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        ("GetParametersForImport", S.UPDATING, KMSInvalidStateException, f"{ARN} is updating."),
        (
            "ImportKeyMaterial",
            S.PENDING_DELETION,
            KMSInvalidStateException,
            f"{ARN} is pending deletion.",
        ),
        ("ImportKeyMaterial", S.CREATING, KMSInvalidStateException, f"{ARN} is creating."),
        ("DeleteImportedKeyMaterial", S.UPDATING, KMSInvalidStateException, f"{ARN} is updating."),
        ("GetKeyRotationStatus", S.UNAVAILABLE, KMSInvalidStateException, f"{ARN} is unavailable."),
    ],
)
def test_refused_states(operation: str, state: KeyState, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        check_state(operation, key_in(state))
    assert info.value.message == message


@pytest.mark.parametrize(
    ("operation", "state"),
    [
        ("EnableKeyRotation", S.ENABLED),
        ("GetKeyRotationStatus", S.PENDING_DELETION),
        ("GetKeyRotationStatus", S.DISABLED),
        ("ListKeyRotations", S.PENDING_IMPORT),
        ("ListKeyRotations", S.PENDING_DELETION),
        ("GetParametersForImport", S.ENABLED),
        ("GetParametersForImport", S.DISABLED),
        ("GetParametersForImport", S.PENDING_IMPORT),
        ("ImportKeyMaterial", S.PENDING_IMPORT),
        ("ImportKeyMaterial", S.UPDATING),
        ("DeleteImportedKeyMaterial", S.PENDING_DELETION),
        ("DeleteImportedKeyMaterial", S.PENDING_IMPORT),
        ("RotateKeyOnDemand", S.ENABLED),
    ],
)
def test_allowed_states(operation: str, state: KeyState) -> None:
    check_state(operation, key_in(state))
