"""A server in this process under uvicorn with a clock the test moves (no sleeping for days),
on SQLite or PostgreSQL; boto3 talks to it over loopback. Its scheduled jobs (deletion,
rotation, import expiry) run every 0.1 s unless the settings say otherwise."""

from __future__ import annotations

import configparser
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from conftest import (
    POSTGRES_ENV,
    _drop_postgres_database,
    _fresh_postgres_database,
    free_port,
    run_strongroom,
)
from strongroom.server.app import KmsApp
from strongroom.server.settings import load_settings
from strongroom.server.wiring import Runtime, build_runtime, prepare

from ._support import REGION, make_client


class FakeClock:
    """The services' clock: starts at the real time and moves only when told."""

    def __init__(self) -> None:
        self._now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


@dataclass
class InProcess:
    kms: Any
    clock: FakeClock
    endpoint: str
    database_url: str
    data_dir: Path
    access: tuple[str, str]  # the admin's access key id and secret
    runtime: Runtime

    def client(self, region: str = REGION) -> Any:
        """A KMS client of the admin for ``region``."""
        return make_client(self.endpoint, *self.access, region)

    def storage_args(self) -> list[str]:
        """The ``--data-dir`` and ``--database-url`` of this server's storage, for commands
        such as ``strongroom audit events``."""
        return ["--data-dir", str(self.data_dir), "--database-url", self.database_url]

    def admin(self, *args: str) -> Any:
        """``strongroom admin ...`` (the executable) on this server's storage."""
        return run_strongroom(
            ["admin", *args, "--data-dir", str(self.data_dir), "--database-url", self.database_url]
        )


@contextmanager
def in_process(data_dir: Path, database_url: str | None, **settings: Any) -> Iterator[InProcess]:
    """Run a server on ``database_url`` (None: SQLite in ``data_dir``) with ``settings``
    (the jobs' and change poll's intervals default to 0.1 s)."""
    port = free_port()
    settings = {"job_interval_seconds": 0.1, "change_poll_seconds": 0.1, **settings}
    config = load_settings(data_dir=data_dir, database_url=database_url, port=port, **settings)
    prepare(config)
    clock = FakeClock()
    runtime = build_runtime(config, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(
            KmsApp(runtime),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, name="strongroom-under-test", daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/health", timeout=1) as reply:
                if reply.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or not thread.is_alive():
                raise
            time.sleep(0.05)
    creds = configparser.ConfigParser()
    creds.read(config.credentials_path)
    access = creds["strongroom"]["aws_access_key_id"], creds["strongroom"]["aws_secret_access_key"]
    try:
        yield InProcess(
            kms=make_client(endpoint, *access),
            clock=clock,
            endpoint=endpoint,
            database_url=config.db_url,
            data_dir=data_dir,
            access=access,
            runtime=runtime,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the in-process server did not stop"


def settle() -> None:
    """Let several job runs pass."""
    time.sleep(0.5)


@contextmanager
def fresh_database(backend: str) -> Iterator[str | None]:
    """A database of its own for one in-process server: None (SQLite in its data directory)
    or a new PostgreSQL database, dropped afterwards. Its own, because the server's jobs act
    on every key in the database and its clock runs ahead of other servers'."""
    if backend == "sqlite":
        yield None
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    try:
        yield url
    finally:
        _drop_postgres_database(base, name)
