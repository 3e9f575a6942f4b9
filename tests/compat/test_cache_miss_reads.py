"""A key no worker has cached is read without SQLite's write lock: Encrypt, Decrypt and
DescribeKey of a cold key answer while another connection holds that lock (a writer in
another process, a worker creating keys), and the key they read is the one committed."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from botocore.config import Config

from conftest import start_server, stop_server

pytestmark = pytest.mark.compat


def test_a_cold_key_is_read_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server(data, None, "--workers", "1")
    try:
        kms = server.client()
        key_id = kms.create_key(Description="cold")["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    finally:
        stop_server(server)
    server = start_server(data, None, "--workers", "1")  # its caches are empty
    writer = sqlite3.connect(data / "strongroom.db", isolation_level=None, timeout=10)
    try:
        import boto3

        kms = boto3.client(
            "kms",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
            config=Config(retries={"max_attempts": 0}, read_timeout=5, connect_timeout=5),
        )
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held until the end
        started = time.monotonic()
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "cold"
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
        kms.encrypt(KeyId=key_id, Plaintext=b"y")
        assert time.monotonic() - started < 4.0  # the lock's wait is 30 s
    finally:
        writer.rollback()
        writer.close()
        stop_server(server)
