"""PostgreSQL stopped under load (``pg_ctl stop -m immediate``), then started again, on a
private cluster of this test's own (never the shared one other tests use): requests fail
fast with KMSInternalException or DependencyTimeoutException, none hangs, and the same
server serves again once PostgreSQL is back, without a restart."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import Server, free_port, run_in_process, start_server, stop_server

from ._crash import client as kms_client

pytestmark = [pytest.mark.compat, pytest.mark.postgres]

FAIL_FAST_SECONDS = 5.0  # the longest a request may take to fail while PostgreSQL is down
RECOVERY_SECONDS = 10.0  # from PostgreSQL accepting connections to writes succeeding again
CLIENT_TIMEOUT = 15.0  # a request that takes longer than this hangs
# A network cut: the store's timeout (database_timeout_seconds, 5 s) for the pool's
# pre-ping of a connection, then again for a new connection, with a margin.
CUT_FAIL_SECONDS = 12.0
CUT_CLIENT_TIMEOUT = 30.0
OUTAGE_CODES = {"KMSInternalException", "DependencyTimeoutException"}


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster in a temporary directory, run as the postgres user."""

    bin: Path
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/strongroom"

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.directory / "pg"),
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self.ctl("-w", "-l", str(self.directory / "postgres.log"), "-o", options, "start")

    def stop_immediately(self) -> None:
        self.ctl("-m", "immediate", "stop")


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    bin_dir = _postgres_bin()
    if bin_dir is None or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("needs root, runuser and the PostgreSQL server binaries (initdb, pg_ctl)")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("needs a postgres user to run a private cluster as")
    directory = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
    os.chown(directory, user.pw_uid, user.pw_gid)
    cluster = PrivateCluster(bin_dir, directory, free_port())
    try:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(bin_dir / "initdb"),
                "-D",
                str(directory / "pg"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE strongroom")
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.stop_immediately()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Outcome:
    operation: str
    started: float
    seconds: float
    result: str  # "ok", an AWS error code, or "no reply: ..."


def _load(
    server: Server, key_id: str, stop: threading.Event, out: list[Outcome], timeout: float
) -> None:
    """CreateKey, Encrypt, DescribeKey and ListAliases in turn until ``stop``."""
    kms = kms_client(server, timeout)
    calls = [
        ("CreateKey", lambda: kms.create_key(Description="outage")),
        ("Encrypt", lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x")),
        ("DescribeKey", lambda: kms.describe_key(KeyId=key_id)),
        ("ListAliases", lambda: kms.list_aliases()),
    ]
    i = 0
    while not stop.is_set():
        operation, call = calls[i % len(calls)]
        i += 1
        started = time.monotonic()
        try:
            call()
            result = "ok"
        except ClientError as exc:
            result = str(exc.response["Error"]["Code"])
        except BotoCoreError as exc:
            result = f"no reply: {exc}"
        out.append(Outcome(operation, started, time.monotonic() - started, result))
        time.sleep(0.01)


def _outage(
    cluster: PrivateCluster,
    tmp_path: Path,
    *,
    fault: str,
    begin: Callable[[], None],
    end: Callable[[], None],
    seconds: float,
    fail_within: float,
    client_timeout: float,
) -> None:
    """Load from 4 threads; ``begin`` the fault, keep the load on for ``seconds``, ``end``
    it; check that every request during the fault succeeded or failed with an outage code
    within ``fail_within``, and that the same server writes again within RECOVERY_SECONDS
    of the end."""
    server = start_server(tmp_path / "data", cluster.url)
    try:
        kms = kms_client(server, client_timeout)
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
        stop = threading.Event()
        outcomes: list[list[Outcome]] = [[] for _ in range(4)]
        threads = [
            threading.Thread(
                target=_load, args=(server, key_id, stop, out, client_timeout), daemon=True
            )
            for out in outcomes
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        down_at = time.monotonic()
        begin()
        time.sleep(seconds)  # load against the fault
        end()
        up_at = time.monotonic()
        recovered_at = None
        while time.monotonic() - up_at < 60:
            try:
                kms.create_key(Description="after")
                recovered_at = time.monotonic()
                break
            except ClientError:
                time.sleep(0.05)
        time.sleep(1.0)  # the load runs on the recovered database for a moment
        stop.set()
        for thread in threads:
            thread.join(timeout=client_timeout + 5)
            assert not thread.is_alive(), "a request hangs"
        every = sorted((o for out in outcomes for o in out), key=lambda o: o.started)
        before = [o for o in every if o.started + o.seconds < down_at]
        during = [o for o in every if o.started + o.seconds >= down_at and o.started < up_at]
        assert before and all(o.result == "ok" for o in before), before[-5:]
        failed = [o for o in during if o.result != "ok"]
        assert failed, f"no request failed during the fault ({fault})"
        assert {o.result for o in failed} <= OUTAGE_CODES, {o.result for o in failed}
        slowest = max(o.seconds for o in during)  # failed or not: none waits longer
        print(
            f"{fault} for {up_at - down_at:.1f}s: {len(during)} requests, {len(failed)}"
            f" failed ({sorted({o.result for o in failed})}: "
            f"{sorted({o.operation for o in failed})}), slowest {slowest:.3f}s;"
            f" writes again {recovered_at - up_at if recovered_at else None}s after the end"
        )
        assert slowest <= fail_within, f"a request took {slowest:.1f}s"
        assert recovered_at is not None, "the server did not recover within 60 s"
        assert recovered_at - up_at <= RECOVERY_SECONDS, recovered_at - up_at
        # Back to normal: every operation works on the same server process.
        after = [o for o in every if o.started > recovered_at]
        assert after and all(o.result == "ok" for o in after), after[:5]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before"
        assert server.process.poll() is None
    finally:
        stop_server(server)
    verify = run_in_process(["audit", "verify", *server.storage_args()], check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_postgres_stopped_under_load_fails_fast_and_recovers_without_restart(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    # Its connections are reset and new ones refused: requests fail at once.
    _outage(
        cluster,
        tmp_path,
        fault="PostgreSQL stopped (pg_ctl stop -m immediate)",
        begin=cluster.stop_immediately,
        end=cluster.start,
        seconds=4.0,
        fail_within=FAIL_FAST_SECONDS,
        client_timeout=CLIENT_TIMEOUT,
    )


def _iptables(port: int, action: str) -> None:
    for direction in ("--dport", "--sport"):
        subprocess.run(
            ["iptables", action, "INPUT", "-p", "tcp", direction, str(port), "-j", "DROP"],
            check=True,
            capture_output=True,
            timeout=30,
        )


def test_a_network_cut_to_postgres_fails_requests_within_the_timeout_and_heals(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    # Every packet to and from PostgreSQL dropped: nothing is refused or reset, nothing
    # answers. Without the store's timeouts a request waited for TCP (minutes).
    if shutil.which("iptables") is None:
        pytest.skip("needs iptables to cut the network to PostgreSQL")
    probe = subprocess.run(["iptables", "-S", "INPUT"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"iptables does not work here: {probe.stderr.decode().strip()}")
    try:
        _outage(
            cluster,
            tmp_path,
            fault="network to PostgreSQL cut (iptables DROP)",
            begin=lambda: _iptables(cluster.port, "-I"),
            end=lambda: _iptables(cluster.port, "-D"),
            seconds=12.0,
            fail_within=CUT_FAIL_SECONDS,
            client_timeout=CUT_CLIENT_TIMEOUT,
        )
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _iptables(cluster.port, "-D")
