"""Faults of the machine under a running server, made for real: an audit segment the
kernel refuses to write, a full disk, a read-only data directory. Each gives the caller
KMSInternalException (never a reply without its audit event, never plaintext), leaves
nothing corrupt, and the server works again once the fault is gone.

These need root (``chattr +i``, ``mount``); they skip, saying why, where it is not."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import os
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import REGION, Server, run_in_process, start_server, stop_server

pytestmark = pytest.mark.compat

INTERNAL = "KMSInternalException"


def _root_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (chattr +i, mount)")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _raw(server: Server, operation: str, params: dict[str, Any]) -> tuple[int, bytes]:
    """One signed KMS request; its HTTP status and the body exactly as sent."""
    body = json.dumps(params)
    request = AWSRequest(
        "POST",
        server.endpoint + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"TrentService.{operation}",
        },
    )
    credentials = Credentials(server.access_key_id, server.secret_access_key)
    SigV4Auth(credentials, "kms", REGION).add_auth(request)
    prepared = urllib.request.Request(
        server.endpoint + "/", data=body.encode(), headers=dict(request.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(prepared, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _verify(server: Server) -> subprocess.CompletedProcess[str]:
    return run_in_process(["audit", "verify", *server.storage_args()], check=False)


def _segment(server: Server) -> Path:
    """The audit segment the (one-process) server writes now."""
    return max((server.data_dir / "audit").glob("*.log"), key=lambda p: p.stat().st_mtime)


@contextlib.contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: the kernel refuses every write to the file, through descriptors
    already open too (EPERM), as it would refuse a file on a failing device."""
    result = _run("chattr", "+i", str(path))
    if result.returncode != 0:
        pytest.skip(f"chattr +i not possible here: {result.stderr.strip()}")
    try:
        yield
    finally:
        _run("chattr", "-i", str(path))


def test_when_the_audit_event_cannot_be_written_the_request_fails_without_plaintext(
    tmp_path: Path,
) -> None:
    _root_or_skip()
    server = start_server(tmp_path / "data")
    try:
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        secret = os.urandom(32)
        blob = kms.encrypt(KeyId=key_id, Plaintext=secret)["CiphertextBlob"]
        before = _segment(server).read_bytes()
        with _immutable(_segment(server)):
            # One request at a time (the request writes its own event) ...
            calls = {
                "Decrypt": {"CiphertextBlob": base64.b64encode(blob).decode()},
                "Encrypt": {"KeyId": key_id, "Plaintext": base64.b64encode(secret).decode()},
                "GenerateDataKey": {"KeyId": key_id, "KeySpec": "AES_256"},
                "GenerateRandom": {"NumberOfBytes": 32},
                "CreateKey": {},
            }
            for operation, params in calls.items():
                status, body = _raw(server, operation, params)
                reply = json.loads(body)
                assert status == 500 and reply["__type"] == INTERNAL, (operation, body)
                assert set(reply) == {"__type", "message"}, (operation, body)
                assert base64.b64encode(secret) not in body and secret not in body
            # ... and many together (their events go to the writer thread as a group).
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                replies = list(
                    pool.map(lambda _: _raw(server, "Decrypt", calls["Decrypt"]), range(32))
                )
            for status, body in replies:
                assert status == 500 and json.loads(body)["__type"] == INTERNAL, body
                assert base64.b64encode(secret) not in body
        assert "audit write failed" in server.log_path.read_text()
        # The file is writable again: the server goes on where the chain ended.
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == secret
        assert _segment(server).read_bytes().startswith(before.rstrip(b"\0"))
    finally:
        stop_server(server)
    result = _verify(server)
    assert result.returncode == 0, result.stdout + result.stderr


@contextlib.contextmanager
def _small_filesystem(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``mount_point`` (a file system that really fills up)."""
    mount_point.mkdir()
    result = _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount_point))
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        _run("umount", "-l", str(mount_point))


def _fill(path: Path) -> int:
    """Write zeros to ``path`` until the file system is full; the bytes written."""
    written = 0
    chunk = bytes(64 * 1024)
    with path.open("wb", buffering=0) as f:
        while True:
            try:
                n = f.write(chunk)
            except OSError:
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]
                continue
            written += n or 0


def _integrity(server: Server) -> str:
    with contextlib.closing(sqlite3.connect(server.data_dir / "strongroom.db")) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_full_disk_gives_clear_errors_and_no_corruption(tmp_path: Path) -> None:
    _root_or_skip()
    # The file system is the data directory itself: the server's log, beside it, stays on
    # the roomy one and can say what went wrong.
    with _small_filesystem(tmp_path / "data", "24m") as data:
        server = start_server(data)
        try:
            kms = server.client()
            acked: dict[str, tuple[bytes, bytes]] = {}  # key id: (ciphertext, plaintext)

            def write_some(n: int) -> list[str]:
                """``n`` CreateKey + TagResource + Encrypt; the error codes met."""
                codes = []
                for _ in range(n):
                    try:
                        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
                        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "a", "TagValue": "b"}])
                        secret = os.urandom(16)
                        blob = kms.encrypt(KeyId=key_id, Plaintext=secret)["CiphertextBlob"]
                        acked[key_id] = (blob, secret)
                    except ClientError as exc:
                        codes.append(exc.response["Error"]["Code"])
                return codes

            assert write_some(5) == []
            _fill(data / "filler")
            # Writes fail, each with KMSInternalException, until the audit trail's room runs
            # out too; then every request fails the same way. Nothing hangs.
            codes = write_some(40)
            assert codes and set(codes) == {INTERNAL}, codes
            for _ in range(3000):  # the audit segment's zeros written ahead run out
                try:
                    kms.generate_random(NumberOfBytes=16)
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == INTERNAL
                    break
            else:
                pytest.fail("requests still succeed with no room left for their audit events")
            status, body = _raw(
                server,
                "Decrypt",
                {"CiphertextBlob": base64.b64encode(next(iter(acked.values()))[0]).decode()},
            )
            assert status == 500 and json.loads(body)["__type"] == INTERNAL
            log = server.log_path.read_text()
            assert "disk is full" in log or "No space left on device" in log, log[-3000:]
            # Space returns: the same server works again, no restart.
            (data / "filler").unlink()
            assert write_some(5) == []
            for blob, secret in acked.values():
                assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == secret
        finally:
            stop_server(server)
        assert _integrity(server) == "ok"
        result = _verify(server)
        assert result.returncode == 0, result.stdout + result.stderr
        # And after a restart, everything acknowledged is there.
        server = start_server(data)
        try:
            kms = server.client()
            for key_id, (blob, secret) in acked.items():
                assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
                assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [
                    {"TagKey": "a", "TagValue": "b"}
                ]
                assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == secret
        finally:
            stop_server(server)


def test_a_read_only_data_directory_stops_the_start_with_a_clear_error(
    tmp_path: Path,
) -> None:
    _root_or_skip()
    data = tmp_path / "data"
    server = start_server(data)
    kms = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
    stop_server(server)
    before = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    # A read-only mount of the directory (root ignores file modes, not a read-only mount).
    # The kernel refuses to make a mount read-only while a file on it is open for writing,
    # so a running server's data directory cannot be turned read-only under it: what an
    # operator meets is a server started on one.
    bound = _run("mount", "--bind", str(data), str(data))
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.strip()}")
    try:
        result = _run("mount", "-o", "remount,ro,bind", str(data))
        assert result.returncode == 0, result.stderr
        with pytest.raises(RuntimeError) as info:
            start_server(data)
        message = str(info.value)
        assert "is on a read-only file system: mount it read-write" in message, message
        assert "Traceback" not in message, message
    finally:
        _run("umount", str(data))
    after = {p.name: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert {name: after[name] for name in before} == before  # nothing written, nothing lost
    server = start_server(data)
    try:
        assert server.client().decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    finally:
        stop_server(server)
    assert _verify(server).returncode == 0


def test_a_change_whose_audit_event_cannot_be_written_is_not_made(tmp_path: Path) -> None:
    _root_or_skip()
    server = start_server(tmp_path / "data")
    try:
        kms = server.client()
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        with _immutable(_segment(server)):
            for operation, params in {
                "CreateKey": {"Description": "made while the trail failed"},
                "DisableKey": {"KeyId": key_id},
                "TagResource": {"KeyId": key_id, "Tags": [{"TagKey": "t", "TagValue": "v"}]},
            }.items():
                status, body = _raw(server, operation, params)
                assert status == 500 and json.loads(body)["__type"] == INTERNAL, body
        # Told that they failed, the callers must find nothing done.
        assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
        assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
    finally:
        stop_server(server)
