"""The periodic jobs on a real runtime (SQLite in a temporary data directory): each job
runs in its own try, so one that fails does not stop the ones after it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.keystores.xks_client import XksClient, XksEndpoint
from strongroom.server.jobs import PERIODIC, Job, Jobs
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare
from strongroom.services.core import Core
from strongroom.services.store_tokens import store_change_name

pytestmark = pytest.mark.unit


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = load_settings(data_dir=tmp_path / "data", log_level="warning")
    prepare(settings)
    rt = build_runtime(settings)
    yield rt
    rt.core.store.close()


def _recorded(job: Job, ran: list[str]) -> Job:
    """``job`` itself, noting its name in ``ran`` once it has run."""

    def run(core: Core) -> object:
        result = job(core)
        ran.append(job.__name__)
        return result

    return run


def test_a_failing_job_does_not_stop_the_jobs_after_it(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    first, *rest = PERIODIC

    def failing(core: Core) -> None:
        raise RuntimeError("the database went away")

    failing.__name__ = first.__name__
    ran: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = Jobs(runtime, pool, periodic=[failing, *(_recorded(job, ran) for job in rest)])
        jobs.run_periodic()
    assert ran == [job.__name__ for job in rest]
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        f"scheduled job {first.__name__} failed"
    ]


def test_every_job_runs_on_a_fresh_runtime(runtime: Runtime) -> None:
    ran: list[str] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        Jobs(runtime, pool, periodic=[_recorded(job, ran) for job in PERIODIC]).run_periodic()
    assert ran == [
        "delete_due_keys",
        "rotate_due_keys",
        "expire_due_materials",
        "prune_sessions",
        "prune_changes",
    ]


def test_the_change_poll_drops_the_xks_client_of_a_changed_store(runtime: Runtime) -> None:
    clients = runtime.core.xks_clients
    endpoint = XksEndpoint("http://127.0.0.1:9", "/kms/xks/v1", "us-east-1", "A" * 20, "s" * 43)
    with ThreadPoolExecutor(max_workers=1) as pool:
        jobs = Jobs(runtime, pool)
        jobs.poll_changes()  # what changed before
        kept = XksClient(endpoint)
        clients.put("cks-1234567890abcdef0", kept, clients.generation)
        with runtime.core.store.transaction() as tx:
            tx.changes.record(store_change_name("cks-1234567890abcdef0"), datetime.now(UTC))
        jobs.poll_changes()
    assert clients.get("cks-1234567890abcdef0") is None
