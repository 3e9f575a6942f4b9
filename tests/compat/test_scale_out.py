"""More than one process serving the same keys: worker processes of one server (SQLite) and
separate nodes sharing one PostgreSQL database. A change made through one process reaches
every other within a bounded time (change_poll_seconds, 0.5 s by default)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (
    POSTGRES_ENV,
    _drop_postgres_database,
    _fresh_postgres_database,
    start_server,
    stop_server,
)

from ._byok import import_material
from ._support import ACCOUNT, make_client, new_principal, unique_alias, worker_pids

pytestmark = pytest.mark.compat

BOUND_SECONDS = 3.0  # change_poll_seconds (0.5 s) with a wide margin for a loaded machine


def _clients(server: Any, n: int) -> list[Any]:
    """Separate clients: separate connections, spread over the worker processes."""
    return [
        make_client(server.endpoint, server.access_key_id, server.secret_access_key)
        for _ in range(n)
    ]


def _outcome(call: Callable[[], Any]) -> str:
    """ "ok", the KeyId a successful call answered with, or the AWS error code."""
    try:
        result = call()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return str(result.get("KeyId", "ok")) if isinstance(result, dict) else "ok"


def _converges(check: Callable[[], bool]) -> float:
    """Poll ``check`` until it holds; return how long that took, failing after the bound."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > BOUND_SECONDS:
            raise AssertionError(f"not consistent {BOUND_SECONDS}s after the change")
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data", None, "--workers", "2")
    yield server
    stop_server(server)


def _chains_that_served(server: Any, key_arn: str) -> int:
    """How many processes wrote audit events about the key (one hash chain per process)."""
    segments = (server.data_dir / "audit").glob("*.log")
    return sum(1 for s in segments if key_arn.encode() in s.read_bytes())


def _signed_encrypt(server: Any, arn: str) -> bytes:
    """One signed Encrypt request as bytes on the wire."""
    body = json.dumps({"KeyId": arn, "Plaintext": base64.b64encode(b"x").decode()})
    request = AWSRequest(
        "POST",
        server.endpoint + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.Encrypt",
        },
    )
    credentials = Credentials(server.access_key_id, server.secret_access_key)
    SigV4Auth(credentials, "kms", "us-east-1").add_auth(request)
    host = server.endpoint.split("://", 1)[1]
    head = ["POST / HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def test_connections_opened_at_once_are_spread_over_the_workers(workers: Any) -> None:
    # A load generator or a connection pool opens its connections together. Each worker has
    # its own SO_REUSEPORT socket, so the kernel spreads them; with one shared socket, the
    # worker that woke first accepted every waiting connection and served them alone.
    arn = workers.client().create_key()["KeyMetadata"]["Arn"]
    request = _signed_encrypt(workers, arn)
    address = workers.endpoint.split("://", 1)[1].split(":")
    n = 64
    connections = [socket.create_connection((address[0], int(address[1]))) for _ in range(n)]
    try:
        for connection in connections:
            connection.sendall(request)
        for connection in connections:
            reply = http.client.HTTPResponse(connection)
            reply.begin()
            reply.read()
            assert reply.status == 200
    finally:
        for connection in connections:
            connection.close()
    counts = [
        sum(1 for line in path.read_bytes().splitlines() if b'"Encrypt"' in line)
        for path in (workers.data_dir / "audit").glob("*.log")
    ]
    assert sum(counts) == n and len(counts) == 2
    assert min(counts) >= n // 4, f"connections per worker: {counts}"  # P(fail) ~ 3e-5 by chance


def test_a_worker_that_dies_is_replaced_and_no_connection_is_lost(workers: Any) -> None:
    arn = workers.client().create_key()["KeyMetadata"]["Arn"]
    before = worker_pids(workers)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    # New connections hashed to the dead worker's socket wait in its backlog until the
    # supervisor's new worker serves them: every call succeeds.
    for client in _clients(workers, 16):
        assert client.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn
    _converges(lambda: len(worker_pids(workers)) == 2 and victim not in worker_pids(workers))
    assert workers.process.poll() is None


def test_a_second_server_on_the_same_port_fails_to_start(workers: Any, tmp_path: Path) -> None:
    port = workers.endpoint.rsplit(":", 1)[1]
    for extra in ([], ["--workers", "2"]):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "strongroom.cli.main",
                "serve",
                "--port",
                port,
                "--data-dir",
                str(tmp_path / f"other{len(extra)}"),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "in use" in result.stderr.lower(), result.stderr
    assert workers.client().list_keys()["Keys"] is not None  # the first one still serves


def test_changes_reach_every_worker_process(workers: Any) -> None:
    clients = _clients(workers, 8)
    key = clients[0].create_key()["KeyMetadata"]
    alias = unique_alias("workers")
    clients[0].create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    for _ in range(10):  # warm every process's caches through the alias
        for client in clients:
            assert client.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"] == key["Arn"]
        if _chains_that_served(workers, key["Arn"]) >= 2:
            break
        clients += _clients(workers, 8)  # new connections, which may land on the other worker
    assert _chains_that_served(workers, key["Arn"]) == 2, "both workers served the key"

    clients[0].disable_key(KeyId=key["KeyId"])
    _converges(
        lambda: (
            {_outcome(lambda c=c: c.encrypt(KeyId=alias, Plaintext=b"x")) for c in clients}
            == {"DisabledException"}
        )
    )

    other = clients[1].create_key()["KeyMetadata"]
    clients[1].update_alias(AliasName=alias, TargetKeyId=other["KeyId"])
    _converges(
        lambda: (
            {_outcome(lambda c=c: c.encrypt(KeyId=alias, Plaintext=b"x")) for c in clients}
            == {other["Arn"]}
        )
    )

    clients[2].delete_alias(AliasName=alias)
    _converges(
        lambda: (
            {_outcome(lambda c=c: c.describe_key(KeyId=alias)) for c in clients}
            == {"NotFoundException"}
        )
    )


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    first = start_server(tmp_path / "a", url)
    second_dir = tmp_path / "b"
    second_dir.mkdir()
    for shared in ("root.key", "credentials"):  # the nodes share the root key and the admin
        shutil.copy2(first.data_dir / shared, second_dir / shared)
        os.chmod(second_dir / shared, 0o600)
    second = start_server(second_dir, url)
    try:
        yield first, second
    finally:
        stop_server(second)
        stop_server(first)
        _drop_postgres_database(base, name)


def test_two_nodes_on_one_postgres_database_serve_the_same_keys(two_nodes: tuple[Any, Any]) -> None:
    a, b = (node.client() for node in two_nodes)
    key = a.create_key(Description="shared")["KeyMetadata"]
    blob = b.encrypt(KeyId=key["KeyId"], Plaintext=b"across nodes")["CiphertextBlob"]
    assert a.decrypt(CiphertextBlob=blob)["Plaintext"] == b"across nodes"
    assert b.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "shared"

    a.disable_key(KeyId=key["KeyId"])
    _converges(lambda: _outcome(lambda: b.decrypt(CiphertextBlob=blob)) == "DisabledException")
    b.enable_key(KeyId=key["KeyId"])
    _converges(lambda: _outcome(lambda: a.decrypt(CiphertextBlob=blob)) == key["Arn"])

    b.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    _converges(
        lambda: a.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    )
    assert (
        _outcome(lambda: a.encrypt(KeyId=key["KeyId"], Plaintext=b"x"))
        == "KMSInvalidStateException"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_workers_stop_cleanly_on_sigterm_and_sigint(tmp_path: Path, sig: int) -> None:
    server = start_server(tmp_path / "data", None, "--workers", "2")
    try:
        pids = worker_pids(server)
        assert len(pids) == 2
        # Both workers serving (the port answers once the first one does): a worker stopped
        # while it still imports has no application to shut down.
        deadline = time.monotonic() + 30
        while server.log_path.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, server.log_path.read_text()
            time.sleep(0.05)
        server.process.send_signal(sig)
        assert server.process.wait(timeout=20) == 0
    finally:
        stop_server(server)
    log = server.log_path.read_text()
    assert log.count("Application shutdown complete") == 2, log
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a worker outlived it"


# --- propagation between nodes: LISTEN/NOTIFY ------------------------------------------

# Seconds within which a change must reach the other nodes here: far below their 60 s poll,
# so what arrives within it came by notification. Issue 16's 100 ms is a speed target,
# measured on a quiet machine by bench/nodes_bench.py ("propagation"), not asserted in a
# test that runs beside others (a loaded machine took 107 ms once).
PROPAGATION_BOUND = 1.0


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[list[Any]]:
    """Three servers on one PostgreSQL database that poll the change feed only every 60 s:
    what reaches another node sooner came by notification."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    config = tmp_path / "slow-poll.toml"
    config.write_text("change_poll_seconds = 60\n")
    nodes = [start_server(tmp_path / "n0", url, "--config", str(config))]
    try:
        for i in (1, 2):
            data = tmp_path / f"n{i}"
            data.mkdir()
            for shared in ("root.key", "credentials"):
                shutil.copy2(nodes[0].data_dir / shared, data / shared)
                os.chmod(data / shared, 0o600)
            nodes.append(start_server(data, url, "--config", str(config)))
        yield nodes
    finally:
        for node in reversed(nodes):
            stop_server(node)
        _drop_postgres_database(base, name)


def _refused_after(check: Callable[[], str], old: str) -> float:
    """Seconds until ``check`` stops answering ``old`` (asked back to back), failing after
    BOUND_SECONDS."""
    started = time.monotonic()
    while (outcome := check()) == old:
        if time.monotonic() - started > BOUND_SECONDS:
            raise AssertionError(f"still {old!r} {BOUND_SECONDS}s after the change")
    assert outcome != old
    return time.monotonic() - started


def test_changes_reach_the_other_nodes_by_notification(three_nodes: list[Any]) -> None:
    """After a change returns on one node, the other two refuse what depends on the old
    state within PROPAGATION_BOUND, though they poll only every 60 s (the times are
    printed; bench/nodes_bench.py measures them against issue 16's 100 ms). Measured for
    DisableKey, PutKeyPolicy, RevokeGrant, DeleteAccessKey, DeleteImportedKeyMaterial and
    ScheduleKeyDeletion."""
    first = three_nodes[0]
    writer = first.client()
    waits: dict[str, float] = {}

    def measure(
        name: str, change: Callable[[], Any], clients: list[Any], check: Callable[[Any], str]
    ) -> None:
        outcomes = {check(client) for client in clients}  # warms the other nodes' caches
        assert len(outcomes) == 1 and not outcomes & ERRORS, outcomes
        old = outcomes.pop()
        change()
        waits[name] = max(_refused_after(lambda c=c: check(c), old) for c in clients)

    others = [node.client() for node in three_nodes[1:]]
    arn = writer.create_key()["KeyMetadata"]["Arn"]

    def encrypt(client: Any) -> str:
        return _outcome(lambda: client.encrypt(KeyId=arn, Plaintext=b"x"))

    measure("DisableKey", lambda: writer.disable_key(KeyId=arn), others, encrypt)
    writer.enable_key(KeyId=arn)
    for client in others:
        _converges(lambda c=client: encrypt(c) == arn)

    deny_encrypt = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
        ],
    }
    measure(
        "PutKeyPolicy",
        lambda: writer.put_key_policy(
            KeyId=arn, PolicyName="default", Policy=json.dumps(deny_encrypt)
        ),
        others,
        encrypt,
    )

    def grantee_clients() -> tuple[dict[str, Any], str, list[Any]]:
        """A user whom only a grant lets DescribeKey, the grant, and its clients of the
        other nodes."""
        user = new_principal(first, "grantee")
        grant = writer.create_grant(
            KeyId=arn, GranteePrincipal=user["arn"], Operations=["DescribeKey"]
        )["GrantId"]
        clients = [
            make_client(node.endpoint, user["AccessKeyId"], user["SecretAccessKey"])
            for node in three_nodes[1:]
        ]
        for client in clients:
            _converges(lambda c=client: describe(c) == "ok")
        return user, grant, clients

    def describe(client: Any) -> str:
        return _outcome(lambda: client.describe_key(KeyId=arn))

    _, grant, clients = grantee_clients()
    measure("RevokeGrant", lambda: writer.revoke_grant(KeyId=arn, GrantId=grant), clients, describe)
    user, _, clients = grantee_clients()
    measure(
        "DeleteAccessKey",
        lambda: first.admin("delete-access-key", user["AccessKeyId"]),
        clients,
        describe,
    )

    imported = writer.create_key(Origin="EXTERNAL")["KeyMetadata"]["Arn"]
    import_material(writer, imported, os.urandom(32))
    measure(
        "DeleteImportedKeyMaterial",
        lambda: writer.delete_imported_key_material(KeyId=imported),
        others,
        lambda c: _outcome(lambda: c.encrypt(KeyId=imported, Plaintext=b"x")),
    )

    doomed = writer.create_key()["KeyMetadata"]["Arn"]
    measure(
        "ScheduleKeyDeletion",
        lambda: writer.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7),
        others,
        lambda c: _outcome(lambda: c.encrypt(KeyId=doomed, Plaintext=b"x")),
    )
    print(
        "propagation to the slower of two other nodes, ms:",
        {name: round(1000 * seconds, 1) for name, seconds in waits.items()},
    )
    assert all(seconds <= PROPAGATION_BOUND for seconds in waits.values()), waits


ERRORS = {
    "AccessDeniedException",
    "DisabledException",
    "KMSInvalidStateException",
    "NotFoundException",
    "UnrecognizedClientException",
}


def test_strict_consistency_refuses_the_old_state_at_once(tmp_path: Path) -> None:
    """With strict_consistency, every request reads the change feed after it arrives: the
    first request after DisableKey returns, on any worker process, is refused, though the
    processes poll only every 60 s and SQLite sends no notifications."""
    config = tmp_path / "strict.toml"
    config.write_text("change_poll_seconds = 60\nstrict_consistency = true\n")
    server = start_server(tmp_path / "data", None, "--workers", "2", "--config", str(config))
    try:
        clients = _clients(server, 8)
        key = clients[0].create_key()["KeyMetadata"]
        for _ in range(10):  # warm both processes' caches
            for client in clients:
                assert client.encrypt(KeyId=key["Arn"], Plaintext=b"x")["KeyId"] == key["Arn"]
            if _chains_that_served(server, key["Arn"]) >= 2:
                break
            clients += _clients(server, 8)
        assert _chains_that_served(server, key["Arn"]) == 2, "both workers served the key"
        clients[0].disable_key(KeyId=key["KeyId"])
        outcomes = {
            _outcome(lambda c=c: c.encrypt(KeyId=key["Arn"], Plaintext=b"x")) for c in clients
        }
        assert outcomes == {"DisabledException"}
    finally:
        stop_server(server)
