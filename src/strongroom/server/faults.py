"""The faults a process injects (``strongroom admin fault``): its table of them, reloaded
through the change feed, and the injection into a request before its operation runs."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass

from strongroom.services.faults import ALL, FAULT_ERRORS, list_faults
from strongroom.storage.ports import FaultRecord, Store


@dataclass(frozen=True, slots=True)
class _Fault:
    """A fault ready to inject: its latency in seconds, rate and error."""

    latency: float
    rate: float
    error_code: str


class FaultTable:
    """The faults of one process, by (account, operation), "*" standing for every one.

    ``faults`` is empty when none is set, so a request pays one truth test of it; the
    table is replaced whole by ``load`` (in the thread pool) and only read on the loop.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self.faults: Mapping[tuple[str, str], _Fault] = {}
        self._random = (rng or random.Random()).random

    def load(self, store: Store) -> None:
        """Read every fault from the database and put them in place at once."""
        self.replace(list_faults(store))

    def replace(self, records: list[FaultRecord]) -> None:
        """Put the faults ``records`` in place of the table's."""
        self.faults = {
            (r.account_id, r.operation): _Fault(r.latency_ms / 1000, r.rate, r.error_code)
            for r in records
        }

    def find(self, account: str, operation: str) -> _Fault | None:
        """The fault for a request of ``account`` to ``operation``: the most specific one
        (that account and operation, then that account, then that operation, then all)."""
        faults = self.faults
        return (
            faults.get((account, operation))
            or faults.get((account, ALL))
            or faults.get((ALL, operation))
            or faults.get((ALL, ALL))
        )

    async def inject(self, service: str, account: str, operation: str) -> None:
        """Apply the fault, if any, of a KMS request of ``account`` (the caller's) to
        ``operation``: wait its latency without blocking the loop, then raise its error
        (marked ``injected``) with its rate's probability. Requests to other services
        (``service``, the signing name: STS) are left alone."""
        if service != "kms":
            return
        fault = self.find(account, operation)
        if fault is None:
            return
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.rate and self._random() < fault.rate:
            kind = FAULT_ERRORS[fault.error_code]
            error = kind.error(kind.message)
            error.injected = True
            raise error
