"""Faults injected for users' CI (``strongroom admin fault``): which errors, the rules of a
fault's values, and setting, clearing and listing faults through the change feed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.domain.errors import (
    DependencyTimeoutException,
    KmsError,
    KMSInternalException,
    ThrottlingException,
    ValidationException,
)

if TYPE_CHECKING:
    from strongroom.services.core import Core
    from strongroom.storage.ports import FaultRecord, Store

ALL = "*"
"""The account or operation of a fault that applies to every account, or every operation."""

FAULTS_CHANGE = "strongroom:faults"
"""The change feed's name for "the faults changed": a running server reloads them."""

MAX_LATENCY_MS = 60_000


@dataclass(frozen=True, slots=True)
class FaultError:
    """An error a fault may inject: its class (the AWS code and HTTP status) and the text
    AWS KMS gives with it."""

    error: type[KmsError]
    message: str


FAULT_ERRORS: Mapping[str, FaultError] = {
    # The message AWS KMS returns when it throttles (Developer Guide, "Throttling AWS KMS
    # requests"); HTTP 400, which every SDK retries as throttling.
    "ThrottlingException": FaultError(
        ThrottlingException,
        "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.",
    ),
    # The KMS model's text of these two faults (HTTP 503 and 500, retried by SDKs as
    # transient errors).
    "DependencyTimeoutException": FaultError(
        DependencyTimeoutException,
        "The system timed out while trying to fulfill the request. You can retry the request.",
    ),
    "KMSInternalException": FaultError(
        KMSInternalException,
        "The request was rejected because an internal exception occurred. "
        "The request can be retried.",
    ),
}
"""The errors a fault may inject, by AWS error code."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A fault's values, checked (``check_fault``)."""

    account_id: str
    operation: str
    error_code: str
    rate: float
    latency_ms: int


def check_fault(
    *, account: str | None, operation: str | None, error: str, rate: str, latency_ms: str | None
) -> FaultSpec:
    """The fault the command-line values describe (None: every account or operation, no
    latency). Raises ValidationException naming the option and its rule."""
    return FaultSpec(
        account_id=check_account(account),
        operation=check_operation(operation),
        error_code=_check_error(error),
        rate=_check_rate(rate),
        latency_ms=_check_latency(latency_ms),
    )


def check_account(account: str | None) -> str:
    """``account`` ("*" for None); ValidationException unless it is 12 digits or "*"."""
    if account is None or account == ALL:
        return ALL
    if not (len(account) == 12 and account.isascii() and account.isdigit()):
        raise ValidationException(
            f"--account {account!r}: an account id is 12 digits, e.g. 111122223333 "
            "(leave --account out for every account)"
        )
    return account


def check_operation(operation: str | None) -> str:
    """``operation`` ("*" for None); ValidationException unless the KMS model has it."""
    if operation is None or operation == ALL:
        return ALL
    from strongroom.protocol.model import load_model  # the model is big; a check is rare

    if operation not in load_model().operation_names:
        raise ValidationException(
            f"--operation {operation!r}: not an operation of the KMS API (its exact name, "
            "e.g. Encrypt or GenerateDataKey; leave --operation out for every operation)"
        )
    return operation


def _check_error(error: str) -> str:
    if error not in FAULT_ERRORS:
        raise ValidationException(
            f"--error {error!r}: the error is one of {', '.join(FAULT_ERRORS)}"
        )
    return error


def _check_rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:  # nan fails too
        raise ValidationException(
            f"--rate {text!r}: the rate is a number from 0 to 1 (the share of requests that "
            "fail, e.g. 0.5)"
        )
    return rate


def _check_latency(text: str | None) -> int:
    if text is None:
        return 0
    try:
        latency = int(text)
    except ValueError:
        latency = -1
    if not 0 <= latency <= MAX_LATENCY_MS:
        raise ValidationException(
            f"--latency-ms {text!r}: the latency is a whole number of milliseconds from 0 to "
            f"{MAX_LATENCY_MS}"
        )
    return latency


def set_fault(core: Core, spec: FaultSpec) -> FaultRecord:
    """Add the fault ``spec``, or replace the one of its account and operation; running
    servers apply it with their next change poll."""
    # The storage ports are imported here: ``strongroom serve`` builds its command line
    # with this module (FAULT_ERRORS) before it starts the workers' fork server.
    from strongroom.storage.ports import FaultRecord

    now = core.clock()
    fault = FaultRecord(
        account_id=spec.account_id,
        operation=spec.operation,
        error_code=spec.error_code,
        rate=spec.rate,
        latency_ms=spec.latency_ms,
        created=now,
    )
    with core.store.transaction() as tx:
        tx.faults.put(fault)
        tx.changes.record(FAULTS_CHANGE, now)
    return fault


def clear_faults(core: Core, account: str | None, operation: str | None) -> int:
    """Delete the faults of ``account`` and ``operation`` (None: any; "*": only the fault
    of every account, or of every operation); how many went. Running servers stop
    injecting them with their next change poll."""
    with core.store.transaction() as tx:
        count = tx.faults.delete(account, operation)
        if count:
            tx.changes.record(FAULTS_CHANGE, core.clock())
    return count


def list_faults(store: Store) -> list[FaultRecord]:
    """Every fault, by account then operation."""
    with store.transaction() as tx:
        return tx.faults.list()
