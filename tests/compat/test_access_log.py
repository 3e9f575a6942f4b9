"""The access log: off by default; with ``--access-log`` (or ``--log-level debug``) one line
per API request with the client, operation, status, error code, time taken and request id,
and nothing a request or reply carries."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import start_server, stop_server

from ._support import eventually

pytestmark = pytest.mark.compat

LINE = re.compile(
    r"strongroom\.access: client=127\.0\.0\.1:(?P<port>\d+) operation=(?P<operation>\S+) "
    r"status=(?P<status>\d+) error=(?P<error>\S+) duration_ms=(?P<ms>\d+\.\d) "
    r"request_id=(?P<rid>[0-9a-f-]{36})$"
)


def _requests(server: Any) -> dict[str, Any]:
    """An Encrypt, a failed DescribeKey, an STS call and a failed one; what the log must
    show or not."""
    kms = server.client()
    secret = f"plaintext {uuid.uuid4().hex}".encode()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    encrypted = kms.encrypt(KeyId=key, Plaintext=secret, EncryptionContext={"ctx": "hidden-v"})
    with pytest.raises(ClientError) as missing:
        kms.describe_key(KeyId="alias/none-" + uuid.uuid4().hex)
    sts = server.client("sts")
    identity = sts.get_caller_identity()
    with pytest.raises(ClientError) as unknown:
        sts.get_session_token()
    return {
        "kms:Encrypt": (encrypted["ResponseMetadata"]["RequestId"], "200", "-"),
        "kms:DescribeKey": (
            missing.value.response["ResponseMetadata"]["RequestId"],
            "400",
            "NotFoundException",
        ),
        "sts:GetCallerIdentity": (identity["ResponseMetadata"]["RequestId"], "200", "-"),
        "sts:GetSessionToken": (
            unknown.value.response["ResponseMetadata"]["RequestId"],
            str(unknown.value.response["ResponseMetadata"]["HTTPStatusCode"]),
            unknown.value.response["Error"]["Code"],
        ),
        "never": [secret.decode(), "hidden-v", server.secret_access_key],
    }


def _access_lines(server: Any) -> list[re.Match[str]]:
    text = Path(server.log_path).read_text()
    lines = [line for line in text.splitlines() if "strongroom.access" in line]
    matches = [LINE.search(line) for line in lines]
    assert all(matches), lines
    return [m for m in matches if m is not None]


@pytest.fixture(
    params=[["--access-log"], ["--log-level", "debug"], ["--access-log", "--workers", "2"]],
    ids=["switch", "debug", "workers"],
)
def logged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data", None, *request.param)
    yield server
    stop_server(server)


def test_each_request_is_logged_once_with_its_fields_and_no_secrets(logged: Any) -> None:
    made = _requests(logged)

    def all_logged() -> dict[str, re.Match[str]]:
        by_rid = {m["rid"]: m for m in _access_lines(logged)}
        for operation, (rid, _, _) in ((k, v) for k, v in made.items() if k != "never"):
            assert rid in by_rid, operation
        return by_rid

    by_rid = eventually(all_logged)
    assert len(by_rid) == len(_access_lines(logged))  # one line per request
    for operation, (rid, status, error) in ((k, v) for k, v in made.items() if k != "never"):
        line = by_rid[rid]
        assert (line["operation"], line["status"], line["error"]) == (operation, status, error)
    text = Path(logged.log_path).read_text()
    for secret in made["never"]:
        assert secret not in text


def test_no_access_log_by_default(server: Any) -> None:
    rid = server.client().list_keys()["ResponseMetadata"]["RequestId"]
    assert "strongroom.access" not in Path(server.log_path).read_text()
    assert rid not in Path(server.log_path).read_text()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_json_log_lines_carry_the_request_id(tmp_path: Path, workers: str) -> None:
    """--log-format json: every line the server logs is one JSON object, uvicorn's own lines
    included; a request's access line names its request id apart from the message."""
    server = start_server(
        tmp_path / "data", None, "--log-format", "json", "--access-log", "--workers", workers
    )
    try:
        expected = _requests(server)
    finally:
        stop_server(server)
    lines = Path(server.log_path).read_text().splitlines()
    # the command's own notices to the operator (credentials, listening on) stay text
    assert all(line.startswith("strongroom: ") for line in lines if not line.startswith("{"))
    entries = [json.loads(line) for line in lines if line.startswith("{")]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert any(entry["logger"].startswith("uvicorn") for entry in entries)
    access = {e["request_id"]: e for e in entries if e["logger"] == "strongroom.access"}
    for name in ("kms:Encrypt", "kms:DescribeKey", "sts:GetCallerIdentity"):
        request_id, status, error = expected[name]
        assert f"status={status} error={error}" in access[request_id]["message"]
    text = Path(server.log_path).read_text()
    assert not any(secret in text for secret in expected["never"])
