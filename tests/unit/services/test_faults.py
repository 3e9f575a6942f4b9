"""The rules of a fault's values (``strongroom admin fault set``), each failure naming the
option and its rule; and the faults table through the SQL store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from strongroom.domain.errors import ValidationException
from strongroom.services.faults import FAULT_ERRORS, FaultSpec, check_fault
from strongroom.storage.ports import FaultRecord
from strongroom.storage.sql import SqlStore

pytestmark = pytest.mark.unit


def _check(**values: str | None) -> FaultSpec:
    given: dict[str, str | None] = {
        "account": None,
        "operation": None,
        "error": "ThrottlingException",
        "rate": "1",
        "latency_ms": None,
    }
    given.update(values)
    return check_fault(**given)  # type: ignore[arg-type]


def test_the_defaults_are_every_account_every_operation_no_latency() -> None:
    assert _check() == FaultSpec("*", "*", "ThrottlingException", 1.0, 0)
    assert _check(account="*", operation="*") == FaultSpec("*", "*", "ThrottlingException", 1.0, 0)


def test_good_values_are_kept() -> None:
    spec = _check(
        account="123456789012",
        operation="GenerateDataKeyPairWithoutPlaintext",
        error="DependencyTimeoutException",
        rate="0.25",
        latency_ms="60000",
    )
    assert spec == FaultSpec(
        "123456789012",
        "GenerateDataKeyPairWithoutPlaintext",
        "DependencyTimeoutException",
        0.25,
        60000,
    )
    assert _check(rate="0").rate == 0.0 and _check(latency_ms="0").latency_ms == 0


def test_the_three_errors_are_those_of_the_issue() -> None:
    assert set(FAULT_ERRORS) == {
        "ThrottlingException",
        "DependencyTimeoutException",
        "KMSInternalException",
    }


@pytest.mark.parametrize(
    ("values", "start"),
    [
        ({"rate": "1.01"}, "--rate '1.01': the rate is a number from 0 to 1"),
        ({"rate": "-0"}, None),  # -0.0 is 0: allowed
        ({"rate": "inf"}, "--rate 'inf'"),
        ({"rate": "nan"}, "--rate 'nan'"),
        ({"rate": ""}, "--rate ''"),
        ({"latency_ms": "60001"}, "--latency-ms '60001': the latency is a whole number"),
        ({"latency_ms": "1e3"}, "--latency-ms '1e3'"),
        ({"latency_ms": "-5"}, "--latency-ms '-5'"),
        ({"error": "ValidationException"}, "--error 'ValidationException': the error is one of"),
        ({"operation": "encrypt"}, "--operation 'encrypt': not an operation of the KMS API"),
        ({"operation": "Encrypt "}, "--operation 'Encrypt '"),
        ({"account": "11112222333"}, "--account '11112222333': an account id is 12 digits"),
        ({"account": "١١١١٢٢٢٢٣٣٣٣"}, "--account"),  # Arabic-Indic digits are no account id
    ],
)
def test_a_bad_value_names_the_option_and_its_rule(
    values: dict[str, str], start: str | None
) -> None:
    if start is None:
        _check(**values)
        return
    with pytest.raises(ValidationException) as info:
        _check(**values)
    assert info.value.message.startswith(start)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(f"sqlite:///{tmp_path / 'f.db'}")
    s.migrate()
    yield s
    s.close()


def test_put_replaces_the_fault_of_its_account_and_operation(store: SqlStore) -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    with store.transaction() as tx:
        tx.faults.put(FaultRecord("*", "Encrypt", "ThrottlingException", 1.0, 0, now))
        tx.faults.put(FaultRecord("111122223333", "*", "KMSInternalException", 0.5, 10, now))
        tx.faults.put(
            FaultRecord("*", "Encrypt", "DependencyTimeoutException", 0.1, 7, now + timedelta(1))
        )
    with store.transaction() as tx:
        assert tx.faults.list() == [
            FaultRecord("*", "Encrypt", "DependencyTimeoutException", 0.1, 7, now + timedelta(1)),
            FaultRecord("111122223333", "*", "KMSInternalException", 0.5, 10, now),
        ]
        assert tx.faults.delete("*", "*") == 0  # "*" is only the fault of every one
        assert tx.faults.delete(None, "Encrypt") == 1
        assert tx.faults.delete(None, None) == 1
        assert tx.faults.list() == []
