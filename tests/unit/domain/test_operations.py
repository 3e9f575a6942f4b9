"""The operation table covers exactly the operations of the KMS model, one row each."""

from __future__ import annotations

import pytest

from strongroom.domain.enums import KeyState
from strongroom.domain.operations import (
    CHANGES_STATE,
    HOT_PATH,
    OPERATIONS,
    TRACKED_USES,
    Operation,
    Scope,
)
from strongroom.protocol.model import load_model

pytestmark = pytest.mark.unit


def test_the_operation_enum_is_exactly_the_operations_of_the_kms_model() -> None:
    # An operation botocore's model gains fails here until it has a row (and so a place in
    # the authorization walk of tests/compat/test_authorization_walk.py).
    assert {o.value for o in Operation} == set(load_model().operation_names)


def test_tracked_uses_are_the_models_key_last_usage_tracking_operations() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("kms")
    enum = model.shape_for("KeyLastUsageTrackingOperation").enum
    assert {o.value for o in TRACKED_USES} == set(enum)


def test_every_operation_has_one_row() -> None:
    assert set(OPERATIONS) == set(Operation)


def test_account_operations_have_no_key_state_or_usage_rule() -> None:
    for operation, rule in OPERATIONS.items():
        if rule.scope is Scope.ACCOUNT:
            assert not rule.states and rule.usage is None, operation


def test_operations_with_a_usage_rule_act_on_a_key_and_refuse_a_disabled_one() -> None:
    for operation, rule in OPERATIONS.items():
        if rule.usage is not None:
            assert rule.scope is Scope.KEY, operation
            assert KeyState.DISABLED in rule.states, operation


def test_the_hot_path_is_the_cryptographic_operations_and_describe_key() -> None:
    assert Operation.ENCRYPT in HOT_PATH and Operation.DESCRIBE_KEY in HOT_PATH
    assert Operation.GENERATE_DATA_KEY_PAIR not in HOT_PATH  # an RSA pair takes up to 1 s
    assert Operation.CREATE_KEY not in HOT_PATH


def test_no_hot_path_operation_changes_state_so_none_writes_an_intent() -> None:
    assert not CHANGES_STATE & HOT_PATH


def test_every_operation_off_the_hot_path_that_is_no_read_changes_state() -> None:
    # A new operation must be put on one side: a change gets its intent written first.
    reads = {o for o in Operation if o.value.startswith(("Describe", "List", "Get"))}
    uses = {Operation.GENERATE_DATA_KEY_PAIR, Operation.GENERATE_DATA_KEY_PAIR_WITHOUT_PLAINTEXT}
    assert set(Operation) - HOT_PATH - reads - uses == CHANGES_STATE - reads
    assert CHANGES_STATE & reads == {Operation.GET_PARAMETERS_FOR_IMPORT}  # stores a token
