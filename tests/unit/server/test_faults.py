"""The process's fault table: the most specific fault applies, its latency is awaited
without blocking the loop, its error is AWS's and marked injected, and the change feed
reloads the table (a real runtime on SQLite)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit.events import build_event
from strongroom.domain.errors import (
    DependencyTimeoutException,
    KmsError,
    KMSInternalException,
    ThrottlingException,
)
from strongroom.server.faults import FaultTable
from strongroom.server.jobs import Jobs
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare
from strongroom.services.faults import check_fault, clear_faults, set_fault
from strongroom.storage.ports import FaultRecord

pytestmark = pytest.mark.unit

A, B = "111111111111", "222222222222"
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _record(
    account: str, operation: str, error: str, rate: float = 1.0, ms: int = 0
) -> FaultRecord:
    return FaultRecord(account, operation, error, rate, ms, NOW)


def _table(*records: FaultRecord, seed: int = 7) -> FaultTable:
    table = FaultTable(random.Random(seed))
    table.replace(list(records))
    return table


def _raised(
    table: FaultTable, account: str, operation: str, service: str = "kms"
) -> KmsError | None:
    try:
        asyncio.run(table.inject(service, account, operation))
    except KmsError as exc:
        return exc
    return None


def test_an_empty_table_is_false_so_requests_pay_one_truth_test() -> None:
    table = FaultTable()
    assert not table.faults
    assert _raised(table, A, "Encrypt") is None
    table.replace([_record("*", "*", "ThrottlingException")])
    assert table.faults


def test_the_most_specific_fault_applies() -> None:
    table = _table(
        _record("*", "*", "KMSInternalException"),
        _record("*", "Decrypt", "ThrottlingException"),
        _record(A, "*", "DependencyTimeoutException"),
        _record(A, "Encrypt", "ThrottlingException", rate=0.0),
    )
    assert _raised(table, A, "Encrypt") is None  # account and operation: rate 0
    assert type(_raised(table, A, "Decrypt")) is DependencyTimeoutException  # account
    assert type(_raised(table, B, "Decrypt")) is ThrottlingException  # operation
    assert type(_raised(table, B, "Encrypt")) is KMSInternalException  # every request


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (
            "ThrottlingException",
            400,
            "You have exceeded the rate at which you may call KMS. "
            "Reduce the frequency of your calls.",
        ),
        (
            "DependencyTimeoutException",
            503,
            "The system timed out while trying to fulfill the request. You can retry the request.",
        ),
        (
            "KMSInternalException",
            500,
            "The request was rejected because an internal exception occurred. "
            "The request can be retried.",
        ),
    ],
)
def test_the_error_is_aws_code_status_and_text_marked_injected(
    code: str, status: int, message: str
) -> None:
    error = _raised(_table(_record("*", "*", code)), A, "Encrypt")
    assert error is not None
    assert (error.code, error.status, error.message, error.injected) == (
        code,
        status,
        message,
        True,
    )
    assert not KmsError("real").injected


def test_other_services_are_left_alone() -> None:
    assert (
        _raised(_table(_record("*", "*", "KMSInternalException")), A, "AssumeRole", "sts") is None
    )


def test_the_rate_is_the_share_of_requests_that_fail() -> None:
    table = _table(_record("*", "*", "ThrottlingException", rate=0.25), seed=1)
    failed = sum(_raised(table, A, "Encrypt") is not None for _ in range(2000))
    assert 400 < failed < 600  # 500 expected; outside is a 1e-6 chance
    never = _table(_record("*", "*", "ThrottlingException", rate=0.0))
    assert all(_raised(never, A, "Encrypt") is None for _ in range(200))


def test_the_latency_is_awaited_without_blocking_the_loop() -> None:
    table = _table(_record(A, "*", "ThrottlingException", rate=0.0, ms=200))
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async def run() -> float:
        started = time.monotonic()
        await asyncio.gather(table.inject("kms", A, "Encrypt"), ticker())
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    assert 0.2 <= elapsed < 0.5
    assert len(ticks) == 5 and ticks[-1] - ticks[0] < 0.19  # ran during the wait


def test_an_injected_failure_event_has_fault_injected_data() -> None:
    common = dict(
        event_time=NOW,
        event_name="Encrypt",
        region="us-east-1",
        request_id="r",
        source_ip="127.0.0.1",
        user_agent="ua",
        user_identity=None,
        request_parameters={"KeyId": "k"},
        response_elements=None,
        resources=[],
        error_code="ThrottlingException",
        error_message="m",
    )
    assert build_event(**common, fault_injected=True)["additionalEventData"] == {  # type: ignore[arg-type]
        "faultInjected": True
    }
    assert "additionalEventData" not in build_event(**common)  # type: ignore[arg-type]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    rt = build_runtime(settings)
    yield rt
    rt.core.store.close()


def test_the_change_feed_reloads_the_faults(runtime: Runtime) -> None:
    core = runtime.core
    spec = check_fault(
        account=A, operation="Encrypt", error="ThrottlingException", rate="1", latency_ms="5"
    )
    set_fault(core, spec)  # before the start: the start loads it
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = Jobs(runtime, pool)

        async def start_and_stop() -> None:
            jobs.start()
            await jobs.stop()

        asyncio.run(start_and_stop())
        assert set(runtime.faults.faults) == {(A, "Encrypt")}
        everyone = check_fault(
            account=None, operation=None, error="KMSInternalException", rate="0.5", latency_ms=None
        )
        set_fault(core, everyone)
        jobs.poll_changes()
        assert set(runtime.faults.faults) == {(A, "Encrypt"), ("*", "*")}
        assert clear_faults(core, A, None) == 1
        jobs.poll_changes()
        assert set(runtime.faults.faults) == {("*", "*")}
        assert clear_faults(core, B, None) == 0
        assert clear_faults(core, None, None) == 1
        jobs.poll_changes()
        assert not runtime.faults.faults


# -- through the pipeline (the app in process, as tests/unit/server/test_pipeline.py) ----


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    from strongroom.server.app import KmsApp

    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    yield KmsApp(build_runtime(settings))


def test_an_injected_failure_runs_nothing_of_the_operation_and_is_marked(app: Any) -> None:
    from .test_pipeline import JSON_11, _call, _events, _signed

    spec = check_fault(
        account=None, operation="CreateKey", error="KMSInternalException", rate="1", latency_ms=None
    )
    set_fault(app.rt.core, spec)  # the app's startup loads it
    create = {"x-amz-target": "TrentService.CreateKey", "content-type": JSON_11}
    status, headers, body = _call(app, _signed(app, create, b"{}", "kms"), b"{}")
    assert status == 500
    assert headers["x-amzn-errortype"] == "KMSInternalException"
    assert json.loads(body) == {
        "__type": "KMSInternalException",
        "message": "The request was rejected because an internal exception occurred. "
        "The request can be retried.",
    }
    with app.rt.core.store.transaction() as tx:  # no key was made
        assert tx.keys.list("111122223333", "us-east-1", after=None, limit=10) == []
    (event,) = _events(app)
    assert event["additionalEventData"] == {"faultInjected": True}
    assert event["errorCode"] == "KMSInternalException"


def test_sts_requests_are_never_injected(app: Any) -> None:
    from .test_pipeline import FORM, _call, _events, _signed

    everything = check_fault(
        account=None, operation=None, error="KMSInternalException", rate="1", latency_ms=None
    )
    set_fault(app.rt.core, everything)
    body = (
        b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s"
        b"&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fnone"
    )
    _, _, reply = _call(app, _signed(app, {"content-type": FORM}, body, "sts"), body)
    assert b"InternalFailure" not in reply, reply
    (event,) = _events(app)
    assert event["eventName"] == "AssumeRole"
    assert "additionalEventData" not in event


def test_a_failed_reload_is_tried_again_with_the_next_poll(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = runtime.core
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = Jobs(runtime, pool)
        jobs._change_seq = core.store.latest_change()
        spec = check_fault(
            account=None, operation=None, error="ThrottlingException", rate="1", latency_ms=None
        )
        set_fault(core, spec)
        load = runtime.faults.load

        def failing(store: Any) -> None:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(runtime.faults, "load", failing)
        with pytest.raises(RuntimeError):
            jobs.poll_changes()
        monkeypatch.setattr(runtime.faults, "load", load)
        jobs.poll_changes()
        assert set(runtime.faults.faults) == {("*", "*")}
