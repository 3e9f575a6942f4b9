"""The dispatch table names operations of the installed KMS model, ML-KEM's included."""

from __future__ import annotations

import pytest

from strongroom.domain.operations import OPERATIONS, Operation
from strongroom.handlers.registry import HANDLERS, HOT_PATH
from strongroom.protocol.model import load_model

pytestmark = pytest.mark.unit


def test_every_handled_operation_is_an_operation_of_the_kms_model() -> None:
    # Fails when botocore is older than pyproject.toml's floor (no Encapsulate/Decapsulate).
    assert set(HANDLERS) <= load_model().operation_names


def test_encapsulate_and_decapsulate_are_handled_with_a_key_state_row() -> None:
    for operation in (Operation.ENCAPSULATE, Operation.DECAPSULATE):
        assert operation in HANDLERS and OPERATIONS[operation].states
    assert set(HOT_PATH) <= set(HANDLERS)


def test_every_operation_has_a_handler() -> None:
    assert {o.value for o in set(Operation) - set(HANDLERS)} == set()
