"""Fault injection (``strongroom admin fault``): set with the CLI while a server runs, the
faults reach boto3 within a second, for their operation and account only, with AWS's
error, text and HTTP status; latency without failure; boto3's retries; the audit trail marks
the failures that were injected."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from conftest import Server, run_in_process, run_strongroom, start_server, stop_server

from ._support import ALL_KMS, assert_kms_error, audit_events, eventually, new_principal

pytestmark = pytest.mark.compat

THROTTLING = (
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)
DEPENDENCY_TIMEOUT = (
    "The system timed out while trying to fulfill the request. You can retry the request."
)
INTERNAL = (
    "The request was rejected because an internal exception occurred. The request can be retried."
)
# (error, HTTP status, message): AWS's for each error a fault may inject.
ERRORS = [
    ("ThrottlingException", 400, THROTTLING),
    ("DependencyTimeoutException", 503, DEPENDENCY_TIMEOUT),
    ("KMSInternalException", 500, INTERNAL),
]
CHANGE_SECONDS = 1.0  # a running server applies a fault change within a second


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of this module's own: faults for every account or operation would disturb
    the tests that share the session's server."""
    server = start_server(tmp_path_factory.mktemp("faults") / "data")
    yield server
    stop_server(server)


@pytest.fixture
def srv(own: Server) -> Iterator[Server]:
    """``own``, with no fault left by the test."""
    yield own
    fault(own, "clear")


@pytest.fixture(scope="module")
def kms(own: Server) -> Any:
    return own.client()


@pytest.fixture(scope="module")
def key_id(kms: Any) -> str:
    return str(kms.create_key(Description="faults")["KeyMetadata"]["KeyId"])


def fault(server: Server, *args: str, check: bool = True) -> Any:
    """``strongroom admin fault ARGS`` on ``server``'s storage; its JSON output."""
    result = run_in_process(["admin", "fault", *args, *server.storage_args()], check=check)
    return json.loads(result.stdout) if result.returncode == 0 else result


def fresh_account(server: Server) -> dict[str, Any]:
    """A user, with kms:* allowed, of an account of its own, made for the calling test."""
    account = f"9{uuid.uuid4().int % 10**11:011d}"
    server.admin("create-account", account)
    return new_principal(server, "f", account=account, policy=ALL_KMS)


def encrypt(kms: Any, key_id: str) -> dict[str, Any]:
    return kms.encrypt(KeyId=key_id, Plaintext=b"x")  # type: ignore[no-any-return]


def fails_with(code: str, call: Any, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``call(*args, **kwargs)`` fails with AWS error ``code``: its error response."""
    return assert_kms_error(code, lambda: call(*args, **kwargs))


def test_a_fault_set_while_the_server_runs_fails_its_operation_within_a_second(
    srv: Server, kms: Any, key_id: str
) -> None:
    fault(srv, "set", "--operation", "Encrypt", "--error", "ThrottlingException", "--rate", "1")
    set_at = time.monotonic()
    error = eventually(
        lambda: fails_with("ThrottlingException", encrypt, kms, key_id), CHANGE_SECONDS
    )
    assert time.monotonic() - set_at < CHANGE_SECONDS
    assert error["Error"]["Message"] == THROTTLING
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    # The other operations run as ever, GenerateDataKey's encryption included.
    blob = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyId"].endswith(key_id)
    kms.describe_key(KeyId=key_id)


@pytest.mark.parametrize(("code", "status", "message"), ERRORS)
def test_each_error_comes_with_aws_text_and_http_status(
    srv: Server, kms: Any, key_id: str, code: str, status: int, message: str
) -> None:
    fault(srv, "set", "--operation", "DescribeKey", "--error", code, "--rate", "1.0")
    error = eventually(lambda: fails_with(code, kms.describe_key, KeyId=key_id), CHANGE_SECONDS)
    assert error["Error"]["Message"] == message
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status


def test_a_fault_of_an_account_fails_that_caller_account_only(
    srv: Server, kms: Any, key_id: str
) -> None:
    mine, other = fresh_account(srv), fresh_account(srv)
    fault(
        srv, "set", "--account", mine["account"], "--error", "KMSInternalException", "--rate", "1"
    )
    eventually(lambda: fails_with("KMSInternalException", mine["client"].list_keys), CHANGE_SECONDS)
    fails_with("KMSInternalException", mine["client"].create_key)
    other["client"].list_keys()
    other["client"].create_key()
    encrypt(kms, key_id)
    # Nothing of a failed operation ran: the CreateKey that failed made no key.
    fault(srv, "clear", "--account", mine["account"])
    assert eventually(lambda: mine["client"].list_keys()["Keys"], CHANGE_SECONDS) == []


def test_the_most_specific_fault_applies(srv: Server, key_id: str) -> None:
    caller = fresh_account(srv)
    client, account = caller["client"], caller["account"]
    # A fault the test before cleared may still be in place for a moment: wait it out.
    mine = eventually(lambda: client.create_key())["KeyMetadata"]["KeyId"]
    fault(
        srv, "set", "--account", account, "--operation", "Encrypt",
        "--error", "ThrottlingException", "--rate", "0",
    )  # fmt: skip
    fault(srv, "set", "--account", account, "--error", "DependencyTimeoutException", "--rate", "1")
    fault(srv, "set", "--operation", "Decrypt", "--error", "ThrottlingException", "--rate", "1")
    fault(srv, "set", "--error", "KMSInternalException", "--rate", "1")  # every request
    admin = srv.client()
    # The server reloads every fault at once: with the last one set in place, all are.
    eventually(lambda: fails_with("KMSInternalException", admin.describe_key, KeyId=key_id))
    time.sleep(CHANGE_SECONDS)  # and in every worker process, whichever serves `client`
    encrypt(client, mine)  # account and operation
    fails_with("DependencyTimeoutException", client.decrypt, CiphertextBlob=b"x" * 64)  # account
    fails_with("ThrottlingException", admin.decrypt, CiphertextBlob=b"x" * 64)  # operation
    assert len(fault(srv, "list")["Faults"]) == 4
    assert fault(srv, "clear", "--account", "*")["Cleared"] == 2
    assert fault(srv, "clear", "--account", account, "--operation", "*")["Cleared"] == 1
    eventually(lambda: admin.describe_key(KeyId=key_id), CHANGE_SECONDS)
    encrypt(client, mine)
    assert [f["Operation"] for f in fault(srv, "list")["Faults"]] == ["Encrypt"]


def test_latency_with_rate_zero_slows_requests_that_succeed(
    srv: Server, kms: Any, key_id: str
) -> None:
    fault(
        srv, "set", "--operation", "Encrypt", "--error", "ThrottlingException",
        "--rate", "0", "--latency-ms", "400",
    )  # fmt: skip

    def slow() -> float:
        started = time.monotonic()
        encrypt(kms, key_id)
        elapsed = time.monotonic() - started
        assert elapsed >= 0.4
        return elapsed

    eventually(slow, CHANGE_SECONDS + 0.5)
    started = time.monotonic()
    kms.describe_key(KeyId=key_id)  # another operation: no latency
    assert time.monotonic() - started < 0.4


def test_boto3_retries_injected_throttling(srv: Server, key_id: str) -> None:
    fault(srv, "set", "--operation", "Encrypt", "--error", "ThrottlingException", "--rate", "1")
    eventually(lambda: fails_with("ThrottlingException", encrypt, srv.client(), key_id))
    fault(srv, "set", "--operation", "Encrypt", "--error", "ThrottlingException", "--rate", "0.5")
    before = len(injected_throttling(srv))
    retrying = boto3.client(
        "kms",
        endpoint_url=srv.endpoint,
        region_name="us-east-1",
        aws_access_key_id=srv.access_key_id,
        aws_secret_access_key=srv.secret_access_key,
        config=Config(retries={"mode": "standard", "max_attempts": 20}),
    )
    time.sleep(CHANGE_SECONDS)  # the rate 0.5 fault is in place
    # Each call fails its first attempt with probability 0.5: at most 40 calls to see a retry
    # (a chance of 1e-12 to see none), and every call succeeds in the end.
    attempts = []
    for _ in range(40):
        attempts.append(encrypt(retrying, key_id)["ResponseMetadata"]["RetryAttempts"])
        if attempts[-1]:
            break
    assert max(attempts) > 0, attempts
    # Each retry answered an injected ThrottlingException, which the audit trail has.
    assert len(injected_throttling(srv)) - before >= sum(attempts)


def injected_throttling(server: Server) -> list[dict[str, Any]]:
    """The audit events of the Encrypt requests that failed with an injected throttling."""
    _, events = audit_events(server, "--event-name", "Encrypt", "--fault-injected")
    return [e for e in events if e["errorCode"] == "ThrottlingException"]


def test_the_aws_cli_retries_injected_throttling(srv: Server, key_id: str) -> None:
    fault(srv, "set", "--operation", "Encrypt", "--error", "ThrottlingException", "--rate", "1")
    eventually(lambda: fails_with("ThrottlingException", encrypt, srv.client(), key_id))
    # The worker that answered has the fault; the CLI's connection may go to the other one,
    # which applies it within the second too.
    time.sleep(CHANGE_SECONDS)
    env = {**srv.cli_env(), "AWS_MAX_ATTEMPTS": "2", "AWS_RETRY_MODE": "standard"}
    done = subprocess.run(
        [
            shutil.which("aws") or "aws",
            "kms",
            "encrypt",
            "--key-id",
            key_id,
            "--plaintext",
            "aGk=",
            "--endpoint-url",
            srv.endpoint,
            "--region",
            "us-east-1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 255
    assert (
        "An error occurred (ThrottlingException) when calling the Encrypt operation "
        f"(reached max retries: 1): {THROTTLING}" in done.stderr
    )


def test_clear_brings_requests_back_to_normal(srv: Server, kms: Any, key_id: str) -> None:
    fault(srv, "set", "--error", "DependencyTimeoutException", "--rate", "1")
    eventually(lambda: fails_with("DependencyTimeoutException", encrypt, kms, key_id))
    assert fault(srv, "clear") == {"Cleared": 1}
    started = time.monotonic()
    eventually(lambda: encrypt(kms, key_id), CHANGE_SECONDS)
    assert time.monotonic() - started < CHANGE_SECONDS
    assert fault(srv, "list") == {"Faults": []}


def test_the_audit_trail_marks_injected_failures_and_not_real_ones(
    srv: Server, kms: Any, key_id: str
) -> None:
    # A fault the test before cleared may still be in place for a moment: wait it out.
    fine = eventually(lambda: encrypt(kms, key_id))
    real = fails_with("NotFoundException", kms.encrypt, KeyId=str(uuid.uuid4()), Plaintext=b"x")
    fault(srv, "set", "--operation", "Encrypt", "--error", "KMSInternalException", "--rate", "1")
    injected = eventually(lambda: fails_with("KMSInternalException", encrypt, kms, key_id))
    ids = {
        r["ResponseMetadata"]["RequestId"]: name
        for name, r in (("real", real), ("fine", fine), ("injected", injected))
    }
    _, events = audit_events(srv, "--event-name", "Encrypt")
    by_name = {ids[e["requestID"]]: e for e in events if e["requestID"] in ids}
    assert by_name["injected"]["additionalEventData"] == {"faultInjected": True}
    assert by_name["injected"]["errorCode"] == "KMSInternalException"
    assert by_name["injected"]["errorMessage"] == INTERNAL
    assert by_name["injected"]["requestParameters"]["keyId"] == key_id
    assert "additionalEventData" not in by_name["real"]
    assert "additionalEventData" not in by_name["fine"]
    out, only = audit_events(srv, "--fault-injected")
    assert injected["ResponseMetadata"]["RequestId"] in out
    assert real["ResponseMetadata"]["RequestId"] not in out
    assert all(e["additionalEventData"] == {"faultInjected": True} for e in only)


BAD_VALUES = [
    (["--rate", "1.5"], "--rate '1.5': the rate is a number from 0 to 1"),
    (["--rate", "-0.1"], "--rate '-0.1': the rate is a number from 0 to 1"),
    (["--rate", "nan"], "--rate 'nan': the rate is a number from 0 to 1"),
    (["--rate", "half"], "--rate 'half': the rate is a number from 0 to 1"),
    (["--rate", "1", "--latency-ms", "60001"], "--latency-ms '60001': the latency is a whole"),
    (["--rate", "1", "--latency-ms", "-1"], "--latency-ms '-1': the latency is a whole"),
    (["--rate", "1", "--latency-ms", "2.5"], "--latency-ms '2.5': the latency is a whole"),
    (["--rate", "1", "--operation", "encrypt"], "--operation 'encrypt': not an operation"),
    (["--rate", "1", "--operation", "AssumeRole"], "--operation 'AssumeRole': not an operation"),
    (["--rate", "1", "--account", "12345"], "--account '12345': an account id is 12 digits"),
    (["--rate", "1", "--account", "12345678901x"], "--account '12345678901x': an account id"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_VALUES)
def test_a_bad_value_exits_2_naming_the_option_and_stores_nothing(
    srv: Server, extra: list[str], message: str
) -> None:
    result = fault(srv, "set", "--error", "ThrottlingException", *extra, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert fault(srv, "list") == {"Faults": []}


def test_the_command_refuses_an_unknown_error_and_a_bad_clear_scope(srv: Server) -> None:
    """Through the real executable: the exit status and stderr a script sees."""
    storage = srv.storage_args()
    bad_error = run_strongroom(
        ["admin", "fault", "set", "--error", "AccessDeniedException", "--rate", "1", *storage],
        check=False,
    )
    assert bad_error.returncode == 2
    assert "--error" in bad_error.stderr and "ThrottlingException" in bad_error.stderr
    bad_clear = run_strongroom(
        ["admin", "fault", "clear", "--operation", "Nope", *storage], check=False
    )
    assert bad_clear.returncode == 2
    assert "--operation 'Nope': not an operation of the KMS API" in bad_clear.stderr
    assert fault(srv, "list") == {"Faults": []}


def test_a_fault_of_a_fresh_account_on_each_backend(server: Server) -> None:
    """On the shared server (SQLite and PostgreSQL), scoped to an account of the test's own
    so that no other test sees it."""
    caller = fresh_account(server)
    client, account = caller["client"], caller["account"]
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    scope = ["--account", account, "--operation", "Encrypt"]
    fault(server, "set", *scope, "--error", "ThrottlingException", "--rate", "1")
    try:
        eventually(lambda: fails_with("ThrottlingException", encrypt, client, key_id), 2)
        client.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        listed = [f for f in fault(server, "list")["Faults"] if f["Account"] == account]
        assert [(f["Operation"], f["Error"], f["Rate"]) for f in listed] == [
            ("Encrypt", "ThrottlingException", 1.0)
        ]
    finally:
        assert fault(server, "clear", *scope) == {"Cleared": 1}
    eventually(lambda: encrypt(client, key_id), 2)


def test_every_worker_applies_a_fault_within_a_second(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = start_server(
        tmp_path_factory.mktemp("faults-workers") / "data", None, "--workers", "2"
    )
    session = boto3.Session()  # its clients share one loaded model: quick to make

    def new_client() -> Any:
        """A new connection, which either worker may take (SO_REUSEPORT)."""
        return session.client(
            "kms",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
            config=Config(retries={"max_attempts": 0}),
        )

    try:
        key_id = new_client().create_key()["KeyMetadata"]["KeyId"]
        fault(
            server, "set", "--operation", "Encrypt", "--error", "ThrottlingException", "--rate", "1"
        )
        time.sleep(CHANGE_SECONDS)
        for _ in range(12):
            fails_with("ThrottlingException", encrypt, new_client(), key_id)
        fault(server, "clear")
        time.sleep(CHANGE_SECONDS)
        for _ in range(12):
            encrypt(new_client(), key_id)
    finally:
        stop_server(server)
