"""How KmsApp hands each request's audit event to the log (in process, no HTTP server): a
request that finds the process idle and stays alone writes its event itself; requests
that arrive together or right after one another share group commits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit.log import verify_trail
from strongroom.server import pipeline as pipeline_module
from strongroom.server.app import KmsApp
from strongroom.server.settings import load_settings
from strongroom.server.wiring import build_runtime, prepare

pytestmark = pytest.mark.unit

SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    # Unsigned: answered MissingAuthenticationTokenException, and audited like any request.
    "headers": [(b"x-amz-target", b"TrentService.ListKeys"), (b"host", b"localhost")],
    "client": ("127.0.0.1", 5000),
}


@pytest.fixture
def kms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KmsApp, list[bool]]]:
    """The app, and the ``alone`` flag of every audit commit it makes."""
    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    app = KmsApp(build_runtime(settings))
    flags: list[bool] = []
    commit = app.rt.audit.commit

    def recording(event: Any, *, alone: bool) -> Any:
        flags.append(alone)
        return commit(event, alone=alone)

    monkeypatch.setattr(app.rt.audit, "commit", recording)
    yield app, flags
    app.rt.core.store.close()


async def _request(app: KmsApp, statuses: list[int]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(dict(SCOPE), receive, send)


def _drive(app: KmsApp, scenario: Any) -> list[int]:
    statuses: list[int] = []

    async def run() -> None:
        app.startup()
        try:
            await scenario(lambda: _request(app, statuses))
        finally:
            await app.shutdown()

    asyncio.run(run())
    return statuses


def test_a_request_that_finds_the_process_idle_writes_its_event_itself(
    kms: tuple[KmsApp, list[bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, flags = kms
    monkeypatch.setattr(pipeline_module, "IDLE_GAP", 0.0)  # any pause is long enough

    async def one_by_one(request: Any) -> None:
        for _ in range(3):
            await request()

    assert _drive(app, one_by_one) == [403] * 3
    assert flags == [True] * 3
    assert verify_trail(app.rt.settings.audit_path) == (3, [])


def test_requests_that_arrive_together_share_a_group_commit(
    kms: tuple[KmsApp, list[bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, flags = kms
    monkeypatch.setattr(pipeline_module, "IDLE_GAP", 0.0)

    async def together(request: Any) -> None:
        await asyncio.gather(*(request() for _ in range(16)))

    assert _drive(app, together) == [403] * 16
    assert flags == [False] * 16  # the first one too: the others started meanwhile
    assert verify_trail(app.rt.settings.audit_path) == (16, [])


def test_requests_queued_right_behind_another_leave_the_sync_to_the_thread(
    kms: tuple[KmsApp, list[bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, flags = kms
    monkeypatch.setattr(pipeline_module, "IDLE_GAP", float("inf"))  # no pause is long enough

    async def back_to_back(request: Any) -> None:
        for _ in range(3):
            await request()

    assert _drive(app, back_to_back) == [403] * 3
    assert flags == [False] * 3
    assert verify_trail(app.rt.settings.audit_path) == (3, [])
