"""Shared fixtures: a real Strongroom server on an ephemeral loopback port, real clients.

Every AWS client here gets explicit credentials and AWS_EC2_METADATA_DISABLED=true, so
no client ever asks the instance-metadata address for credentials.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name in (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_KMS",
):
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

POSTGRES_ENV = "STRONGROOM_TEST_POSTGRES_URL"
# Request quotas are off for every server the tests start (CreateKey is 5 a second in AWS):
# tests of quotas turn them on with --request-quotas on (tests/compat/test_quotas.py).
os.environ.setdefault("STRONGROOM_REQUEST_QUOTAS", "false")
# One worker process per test server unless a test asks for more (--workers): the default,
# one per core, would start a worker per core for each of the hundreds of servers here.
os.environ.setdefault("STRONGROOM_WORKERS", "1")
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    endpoint: str
    data_dir: Path
    database_url: str | None
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra_args: list[str] = field(default_factory=list)

    def client(self, service: str = "kms", region: str = REGION, **creds: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=creds.get("access_key_id", self.access_key_id),
            aws_secret_access_key=creds.get("secret_access_key", self.secret_access_key),
            config=Config(retries={"max_attempts": 0}),
        )

    def cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
        )
        return env

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``strongroom admin ...`` on this server's storage, run in this process: the same
        code as the command (``tests/compat/test_cli.py`` runs the real executable), without
        a Python start per call, which made admin-heavy tests slow."""
        return run_in_process(["admin", *args, *self.storage_args()])

    def storage_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args


def run_in_process(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """``strongroom`` with ``args`` through its ``main`` in this process, captured as
    ``run_strongroom`` captures the executable's output."""
    from strongroom.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse errors and --help
            code = exc.code if isinstance(exc.code, int) else 2
    result = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check:
        result.check_returncode()
    return result


def run_strongroom(args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "strongroom.cli.main", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def start_server(data_dir: Path, database_url: str | None = None, *extra: str) -> Server:
    port = free_port()
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    data_dir.parent.mkdir(parents=True, exist_ok=True)  # the server makes data_dir (0700)
    cmd = [
        sys.executable,
        "-m",
        "strongroom.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *extra,
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    log = log_path.open("wb")
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    _wait_healthy(endpoint, process, log_path)
    return started_server(endpoint, data_dir, database_url, process, log_path, extra)


def started_server(
    endpoint: str,
    data_dir: Path,
    database_url: str | None,
    process: subprocess.Popen[bytes],
    log_path: Path,
    extra: tuple[str, ...] | list[str] = (),
) -> Server:
    """The Server of a process that answers at ``endpoint``, with the admin credentials
    its first start wrote to ``data_dir``."""
    creds = configparser.ConfigParser()
    creds.read(data_dir / "credentials")
    return Server(
        endpoint=endpoint,
        data_dir=data_dir,
        database_url=database_url,
        access_key_id=creds["strongroom"]["aws_access_key_id"],
        secret_access_key=creds["strongroom"]["aws_secret_access_key"],
        process=process,
        log_path=log_path,
        extra_args=list(extra),
    )


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _wait_healthy(endpoint: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(endpoint + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not become healthy: {log_path.read_text()}")


def _fresh_postgres_database(base_url: str) -> tuple[str, str]:
    """Create an empty database next to the one in ``base_url``; returns (url, name)."""
    import psycopg

    name = f"strongroom_test_{uuid.uuid4().hex[:10]}"
    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    prefix, _, _ = base_url.rpartition("/")
    return f"{prefix}/{name}", name


def _drop_postgres_database(base_url: str, name: str) -> None:
    import psycopg

    conninfo = base_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite in the data directory), then a fresh PostgreSQL database dropped after
    the test."""
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    yield url
    _drop_postgres_database(base, name)


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL two data directories can share: a SQLite file outside both, or a
    fresh PostgreSQL database dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    yield url
    _drop_postgres_database(base, name)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str | None]:
    """The database URL of each backend the compat tests run on (None: SQLite default)."""
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    url, name = _fresh_postgres_database(base)
    yield url
    _drop_postgres_database(base, name)


@pytest.fixture(scope="session")
def server(backend: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("server") / "data", backend)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def kms(server: Server) -> Any:
    return server.client()


@pytest.fixture
def key(kms: Any) -> dict[str, Any]:
    """A fresh symmetric key's metadata."""
    return kms.create_key(Description="test key")["KeyMetadata"]  # type: ignore[no-any-return]


def aws_cli(
    server: Server, *args: str, check: bool = True, service: str = "kms"
) -> subprocess.CompletedProcess[str]:
    """Run ``aws <service> ...`` (awscli from PyPI; ``kms`` unless said) against the server."""
    exe = shutil.which("aws") or "aws"
    return subprocess.run(
        [
            exe,
            service,
            *args,
            "--endpoint-url",
            server.endpoint,
            "--region",
            REGION,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=server.cli_env(),
        check=check,
        timeout=120,
    )
