"""AWS KMS's quotas on a server of their own with request quotas on: a request over a rate
gets ThrottlingException, which boto3, the AWS CLI and the JavaScript SDK retry; the
operator's values (``strongroom admin quota``) take effect while the server runs; two
worker processes share one limit; resource quotas give LimitExceededException.

Each test works in an account of its own, so its quota values and buckets are its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import (
    POSTGRES_ENV,
    REGION,
    Server,
    _drop_postgres_database,
    _fresh_postgres_database,
    run_in_process,
    start_server,
    stop_server,
)

from ._support import ALL_KMS, assert_kms_error, eventually, new_principal

pytestmark = pytest.mark.compat

THROTTLED = (
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
)
NODE_DIR = Path(__file__).resolve().parents[1] / "node"
NODE = shutil.which("node")


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("quotas") / "data", None, "--request-quotas", "on")
    yield srv
    stop_server(srv)


@pytest.fixture
def tenant(quota_server: Server) -> dict[str, Any]:
    """A user allowed kms:* in a new account, and a key of its own."""
    account = f"{uuid.uuid4().int % 10**12:012d}"
    quota_server.admin("create-account", account)
    user = new_principal(quota_server, "quota", account=account, policy=ALL_KMS)
    user["key"] = user["client"].create_key()["KeyMetadata"]
    return user


def _set(server: Server, account: str, name: str, value: str) -> None:
    server.admin("quota", "set", "--account", account, name, value)


def _set_applied(server: Server, account: str, name: str, value: str) -> None:
    """``_set``, and a change poll's time for the server to apply it."""
    _set(server, account, name, value)
    time.sleep(0.8)


def _admin(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """``strongroom admin quota ARGS`` on the server's storage, failing or not."""
    return run_in_process(["admin", "quota", *args, *server.storage_args()], check=False)


def _client(server: Server, user: dict[str, Any], **retries: Any) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=user["AccessKeyId"],
        aws_secret_access_key=user["SecretAccessKey"],
        config=Config(retries=retries or {"total_max_attempts": 1}),
    )


def _burst(kms: Any, n: int, **params: Any) -> tuple[int, list[dict[str, Any]]]:
    """``n`` DescribeKey calls at once: how many succeeded, and the errors' responses."""
    ok, errors = 0, []
    for _ in range(n):
        try:
            kms.describe_key(**params)
            ok += 1
        except ClientError as exc:
            errors.append(exc.response)
    return ok, errors


def _throttled_now(kms: Any, key_id: str) -> None:
    """Use up the quota until the server throttles (asserting that it does)."""
    for _ in range(100):
        try:
            kms.describe_key(KeyId=key_id)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ThrottlingException"
            return
    raise AssertionError("never throttled")


def test_call_over_the_rate_gets_throttling_exception(
    quota_server: Server, tenant: dict[str, Any]
) -> None:
    _set(quota_server, tenant["account"], "DescribeKey request rate", "2")
    eventually(lambda: _throttled_now(tenant["client"], tenant["key"]["KeyId"]), 3)
    time.sleep(1.0)  # the bucket full again: two
    ok, errors = _burst(tenant["client"], 6, KeyId=tenant["key"]["KeyId"])
    assert 2 <= ok <= 3  # the bucket's two, and what refilled meanwhile
    error = errors[0]
    assert error["Error"] == {"Code": "ThrottlingException", "Message": THROTTLED}
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    # Other quotas are counted apart: the symmetric cryptographic quota is untouched.
    tenant["client"].encrypt(KeyId=tenant["key"]["KeyId"], Plaintext=b"x")


@pytest.mark.parametrize("mode", ["standard", "legacy", "adaptive"])
def test_boto3_retries_throttling_and_succeeds(
    quota_server: Server, tenant: dict[str, Any], mode: str
) -> None:
    _set(quota_server, tenant["account"], "DescribeKey request rate", "4")
    key_id = tenant["key"]["KeyId"]
    eventually(lambda: _throttled_now(tenant["client"], key_id), 3)
    patient = _client(quota_server, tenant, mode=mode, total_max_attempts=10)
    response = patient.describe_key(KeyId=key_id)
    assert response["KeyMetadata"]["KeyId"] == key_id
    assert response["ResponseMetadata"]["RetryAttempts"] > 0


def test_aws_cli_retries_throttling(quota_server: Server, tenant: dict[str, Any]) -> None:
    # One request in 4 s (GetParametersForImport's rate): the CLI's start takes less.
    _set(quota_server, tenant["account"], "DescribeKey request rate", "0.25")
    key_id = tenant["key"]["KeyId"]
    eventually(lambda: _throttled_now(tenant["client"], key_id), 3)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": tenant["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": tenant["SecretAccessKey"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "10",
    }
    cli = [shutil.which("aws") or "aws", "kms", "describe-key", "--key-id", key_id]
    done = subprocess.run(
        [*cli, "--endpoint-url", quota_server.endpoint, "--output", "json", "--debug"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["KeyMetadata"]["KeyId"] == key_id
    assert "ThrottlingException" in done.stderr
    assert "Retry needed" in done.stderr


@pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules").is_dir(),
    reason="node or tests/node/node_modules is missing: run `npm ci --prefix tests/node`",
)
def test_js_sdk_retries_throttling(quota_server: Server, tenant: dict[str, Any]) -> None:
    _set(quota_server, tenant["account"], "DescribeKey request rate", "2")
    key_id = tenant["key"]["KeyId"]
    eventually(lambda: _throttled_now(tenant["client"], key_id), 3)
    given = {
        "server": {"endpoint": quota_server.endpoint, "region": REGION},
        "caller": {
            "accessKeyId": tenant["AccessKeyId"],
            "secretAccessKey": tenant["SecretAccessKey"],
        },
        "keyId": key_id,
    }
    assert NODE is not None
    done = subprocess.run(
        [NODE, "quotas.mjs", "retried"],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["throttled"]["name"] == "ThrottlingException"
    assert seen["throttled"]["message"] == THROTTLED
    assert seen["throttled"]["httpStatusCode"] == 400
    assert seen["keyId"] == key_id
    assert seen["metadata"]["attempts"] > 1


def test_quota_set_while_running_applies_within_a_second_and_reset_restores_it(
    quota_server: Server, tenant: dict[str, Any]
) -> None:
    kms, key_id = tenant["client"], tenant["key"]["KeyId"]
    assert _burst(kms, 10, KeyId=key_id) == (10, [])  # 2,000 a second by default
    _set(quota_server, tenant["account"], "DescribeKey request rate", "1")
    set_at = time.monotonic()

    def throttled() -> None:
        assert _burst(kms, 3, KeyId=key_id)[1]

    eventually(throttled, 3)
    assert time.monotonic() - set_at < 1.5  # one change poll (0.5 s) and the burst
    quota_server.admin("quota", "reset", "--account", tenant["account"], "DescribeKey request rate")
    reset_at = time.monotonic()
    time.sleep(1.0)  # a poll, and the 1-a-second bucket would have one token again
    assert _burst(kms, 10, KeyId=key_id) == (10, [])
    assert time.monotonic() - reset_at < 3


def test_quota_for_every_account_and_an_accounts_own(
    quota_server: Server, tenant: dict[str, Any]
) -> None:
    listed = json.loads(quota_server.admin("quota", "list", "--account", tenant["account"]).stdout)
    row = next(q for q in listed if q["Name"] == "CreateKey request rate")
    assert row == {
        "Name": "CreateKey request rate",
        "Kind": "request",
        "Value": 5,
        "Default": 5,
        "Adjustable": True,
        "Source": "default",
        "AppliesTo": ["CreateKey"],
    }
    _set(quota_server, tenant["account"], "CreateKey request rate", "7")
    listed = json.loads(quota_server.admin("quota", "list", "--account", tenant["account"]).stdout)
    row = next(q for q in listed if q["Name"] == "CreateKey request rate")
    assert (row["Value"], row["Source"]) == (7, "account")


def test_cross_account_requests_count_against_the_callers_account(
    quota_server: Server, tenant: dict[str, Any]
) -> None:
    # The key's account has a quota of 1; the caller's (the server's admin) the default.
    _set(quota_server, tenant["account"], "Cryptographic operations (symmetric) request rate", "1")
    owner = tenant["client"]
    key = tenant["key"]
    owner.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{tenant['account']}:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    time.sleep(1.0)
    other = quota_server.client()
    for _ in range(5):
        other.encrypt(KeyId=key["Arn"], Plaintext=b"x")


def _admitted_over(servers: list[Server], key_id: str, window: float, threads: int = 8) -> int:
    """DescribeKey calls that succeed over ``window`` seconds from ``threads`` clients, each
    request on a new connection to one of ``servers`` in turn (so every worker and node
    gets some); every failure must be ThrottlingException."""
    counts: list[int] = []

    def hammer(i: int) -> None:
        ok = 0
        end = time.monotonic() + window
        while time.monotonic() < end:
            i += 1
            client = servers[i % len(servers)].client()  # a new connection
            try:
                client.describe_key(KeyId=key_id)
                ok += 1
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ThrottlingException"
        counts.append(ok)

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(counts)


def test_two_workers_share_one_limit(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", None, "--request-quotas", "on", "--workers", "2")
    try:
        srv.admin("quota", "set", "DescribeKey request rate", "10")
        key_id = srv.client().create_key()["KeyMetadata"]["KeyId"]
        time.sleep(2.0)  # both workers' change polls have seen the value, even when busy
        # At most the rate over the window plus one second's burst (10): each worker with
        # a bucket of its own would have let through twice as many.
        admitted = _admitted_over([srv], key_id, 2.0)
        assert 10 <= admitted <= 10 * 2.0 + 10 + 3
    finally:
        stop_server(srv)


def test_two_nodes_on_postgresql_share_one_limit(tmp_path: Path) -> None:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV}")
    url, name = _fresh_postgres_database(base)
    servers: list[Server] = []
    try:
        servers.append(start_server(tmp_path / "a", url, "--request-quotas", "on"))
        (tmp_path / "b").mkdir(mode=0o700)
        for shared in ("root.key", "credentials"):  # one root key; the admin's access key
            shutil.copy2(tmp_path / "a" / shared, tmp_path / "b" / shared)
        servers.append(start_server(tmp_path / "b", url, "--request-quotas", "on"))
        servers[0].admin("quota", "set", "DescribeKey request rate", "10")
        key_id = servers[0].client().create_key()["KeyMetadata"]["KeyId"]
        time.sleep(1.0)
        admitted = _admitted_over(servers, key_id, 2.0)
        assert 10 <= admitted <= 10 * 2.0 + 10 + 3
    finally:
        for srv in servers:
            stop_server(srv)
        _drop_postgres_database(base, name)


# -- resource quotas ---------------------------------------------------------------------


def test_customer_managed_keys_per_account(quota_server: Server, tenant: dict[str, Any]) -> None:
    kms = tenant["client"]
    _set_applied(quota_server, tenant["account"], "AWS KMS keys", "2")  # the tenant has one key
    kms.create_key()
    response = assert_kms_error("LimitExceededException", kms.create_key)
    assert "AWS KMS keys" in response["Error"]["Message"]
    assert len(kms.list_keys()["Keys"]) == 2
    # AWS managed keys do not count: the first use of alias/aws/s3 creates one.
    kms.describe_key(KeyId="alias/aws/s3")


def test_aliases_per_key(quota_server: Server, tenant: dict[str, Any]) -> None:
    kms, key = tenant["client"], tenant["key"]
    _set_applied(quota_server, tenant["account"], "Aliases per KMS key", "1")
    kms.create_alias(AliasName=f"alias/q-{uuid.uuid4().hex[:8]}", TargetKeyId=key["KeyId"])
    response = assert_kms_error(
        "LimitExceededException",
        kms.create_alias,
        AliasName=f"alias/q-{uuid.uuid4().hex[:8]}",
        TargetKeyId=key["KeyId"],
    )
    assert response["Error"]["Message"] == (
        f"Key {key['Arn']} already has 1 aliases, the most a key can have."
    )


def test_grants_per_key(quota_server: Server, tenant: dict[str, Any]) -> None:
    kms, key = tenant["client"], tenant["key"]
    _set_applied(quota_server, tenant["account"], "Grants per KMS key", "1")
    grant = {"KeyId": key["KeyId"], "GranteePrincipal": tenant["arn"], "Operations": ["Encrypt"]}
    kms.create_grant(**grant)
    response = assert_kms_error("LimitExceededException", kms.create_grant, **grant)
    assert "at most 1 grants" in response["Error"]["Message"]


def test_tags_per_key(quota_server: Server, tenant: dict[str, Any]) -> None:
    kms, key = tenant["client"], tenant["key"]
    _set_applied(quota_server, tenant["account"], "Tags per KMS key", "2")
    tags = [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(3)]
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags[:2])
    # AWS's answer to one tag too many (recorded against AWS): TagException "Too many tags".
    assert_kms_error(
        "TagException", kms.tag_resource, message="Too many tags", KeyId=key["KeyId"], Tags=tags
    )


def test_key_policy_size_is_not_adjustable(quota_server: Server, tenant: dict[str, Any]) -> None:
    done = _admin(quota_server, "set", "Key policy document size", "65536")
    assert done.returncode != 0
    assert "'Key policy document size' is not adjustable" in done.stderr
    policy = json.dumps({"Version": "2012-10-17", "Statement": []}) + " " * 32768
    assert_kms_error(
        "LimitExceededException",
        tenant["client"].put_key_policy,
        KeyId=tenant["key"]["KeyId"],
        PolicyName="default",
        Policy=policy,
    )


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["set", "No such quota", "1"], "unknown quota 'No such quota'"),
        (["set", "CreateKey request rate", "fast"], "value 'fast' is not a number"),
        (["set", "CreateKey request rate", "0"], "value 0 is out of range"),
        (["set", "AWS KMS keys", "1.5"], "value 1.5 is not a whole number"),
        (["set", "--account", "12", "CreateKey request rate", "1"], "'12' is not an account id"),
        (["reset", "No such quota"], "unknown quota 'No such quota'"),
    ],
)
def test_admin_quota_refuses_bad_input(quota_server: Server, args: list[str], said: str) -> None:
    done = _admin(quota_server, *args)
    assert done.returncode == 2
    assert said in done.stderr
