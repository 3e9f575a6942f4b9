"""The AWS CLI (v1, from PyPI) against the server, the README's commands as written, and
the `strongroom` command itself."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REGION, aws_cli, run_strongroom, start_server, stop_server

from ._support import ACCOUNT, assert_kms_error, make_client, unique_alias

pytestmark = pytest.mark.compat

README = Path(__file__).resolve().parents[2] / "README.md"


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout) if result.stdout.strip() else {}


def aws_text(server: Any, *args: str, env: dict[str, str] | None = None) -> str:
    """``aws kms ... --output text`` with the admin's credentials (or ``env``)."""
    exe = shutil.which("aws") or "aws"
    result = subprocess.run(
        [
            exe,
            "kms",
            *args,
            "--endpoint-url",
            server.endpoint,
            "--region",
            REGION,
            "--output",
            "text",
        ],
        capture_output=True,
        text=True,
        env=env or server.cli_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# -- keys -------------------------------------------------------------------------------


def test_cli_create_describe_and_list_keys(server: Any) -> None:
    created = _json(
        aws_cli(
            server,
            "create-key",
            "--description",
            "from the cli",
            "--tags",
            "TagKey=origin,TagValue=cli",
        )
    )["KeyMetadata"]
    assert created["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{created['KeyId']}"
    assert created["KeyState"] == "Enabled"
    assert created["Description"] == "from the cli"
    described = _json(aws_cli(server, "describe-key", "--key-id", created["Arn"]))["KeyMetadata"]
    assert described["KeyId"] == created["KeyId"]
    listed = _json(aws_cli(server, "list-keys"))  # the CLI follows NextMarker itself
    assert {"KeyId": created["KeyId"], "KeyArn": created["Arn"]} in listed["Keys"]


def test_cli_enable_disable_and_update_key_description(
    server: Any, kms: Any, key: dict[str, Any]
) -> None:
    aws_cli(server, "disable-key", "--key-id", key["KeyId"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    aws_cli(server, "enable-key", "--key-id", key["Arn"])
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    aws_cli(server, "update-key-description", "--key-id", key["KeyId"], "--description", "via cli")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "via cli"


def test_cli_schedule_and_cancel_key_deletion(server: Any, kms: Any, key: dict[str, Any]) -> None:
    out = _json(
        aws_cli(
            server,
            "schedule-key-deletion",
            "--key-id",
            key["KeyId"],
            "--pending-window-in-days",
            "7",
        )
    )
    assert out["KeyId"] == key["Arn"]
    assert out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == 7
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    out = _json(aws_cli(server, "cancel-key-deletion", "--key-id", key["KeyId"]))
    assert out["KeyId"] == key["Arn"]
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"


# -- aliases and tags -------------------------------------------------------------------


def test_cli_create_list_update_and_delete_alias(
    server: Any, kms: Any, key: dict[str, Any]
) -> None:
    name = unique_alias("cli")
    aws_cli(server, "create-alias", "--alias-name", name, "--target-key-id", key["KeyId"])
    [entry] = _json(aws_cli(server, "list-aliases", "--key-id", key["KeyId"]))["Aliases"]
    assert entry["AliasName"] == name
    assert entry["AliasArn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"
    assert entry["TargetKeyId"] == key["KeyId"]
    other = kms.create_key()["KeyMetadata"]
    aws_cli(server, "update-alias", "--alias-name", name, "--target-key-id", other["Arn"])
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == other["KeyId"]
    aws_cli(server, "delete-alias", "--alias-name", name)
    assert_kms_error("NotFoundException", kms.describe_key, KeyId=name)


def test_cli_tag_list_and_untag_resource(server: Any, key: dict[str, Any]) -> None:
    aws_cli(
        server,
        "tag-resource",
        "--key-id",
        key["KeyId"],
        "--tags",
        "TagKey=team,TagValue=blue",
        "TagKey=env,TagValue=ci",
    )
    tags = _json(aws_cli(server, "list-resource-tags", "--key-id", key["Arn"]))["Tags"]
    assert sorted(tags, key=lambda t: t["TagKey"]) == [
        {"TagKey": "env", "TagValue": "ci"},
        {"TagKey": "team", "TagValue": "blue"},
    ]
    aws_cli(server, "untag-resource", "--key-id", key["KeyId"], "--tag-keys", "env")
    tags = _json(aws_cli(server, "list-resource-tags", "--key-id", key["KeyId"]))["Tags"]
    assert tags == [{"TagKey": "team", "TagValue": "blue"}]


# -- cryptography -----------------------------------------------------------------------


def test_cli_encrypt_and_decrypt_files(
    server: Any, aliased_key: dict[str, Any], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(os.urandom(100) + b"\x00\n binary")
    out = _json(
        aws_cli(
            server,
            "encrypt",
            "--key-id",
            aliased_key["alias"],
            "--plaintext",
            f"fileb://{secret}",
            "--encryption-context",
            "purpose=cli,team=blue",
        )
    )
    assert out["KeyId"] == aliased_key["meta"]["Arn"]
    blob = tmp_path / "secret.enc"
    blob.write_bytes(base64.b64decode(out["CiphertextBlob"]))
    plain = _json(
        aws_cli(
            server,
            "decrypt",
            "--ciphertext-blob",
            f"fileb://{blob}",
            "--encryption-context",
            "team=blue,purpose=cli",
        )
    )
    assert base64.b64decode(plain["Plaintext"]) == secret.read_bytes()
    assert plain["KeyId"] == aliased_key["meta"]["Arn"]


def test_cli_generate_data_keys_and_re_encrypt(
    server: Any, kms: Any, key: dict[str, Any], tmp_path: Path
) -> None:
    out = _json(
        aws_cli(server, "generate-data-key", "--key-id", key["Arn"], "--key-spec", "AES_256")
    )
    data_key = base64.b64decode(out["Plaintext"])
    assert len(data_key) == 32
    blob = base64.b64decode(out["CiphertextBlob"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == data_key

    out = _json(
        aws_cli(
            server,
            "generate-data-key-without-plaintext",
            "--key-id",
            key["KeyId"],
            "--number-of-bytes",
            "16",
        )
    )
    assert "Plaintext" not in out
    assert (
        len(kms.decrypt(CiphertextBlob=base64.b64decode(out["CiphertextBlob"]))["Plaintext"]) == 16
    )

    destination = kms.create_key()["KeyMetadata"]
    blob_file = tmp_path / "dk.enc"
    blob_file.write_bytes(blob)
    out = _json(
        aws_cli(
            server,
            "re-encrypt",
            "--ciphertext-blob",
            f"fileb://{blob_file}",
            "--destination-key-id",
            destination["KeyId"],
        )
    )
    assert out["SourceKeyId"] == key["Arn"] and out["KeyId"] == destination["Arn"]
    assert (
        kms.decrypt(CiphertextBlob=base64.b64decode(out["CiphertextBlob"]))["Plaintext"] == data_key
    )

    random = base64.b64decode(
        _json(aws_cli(server, "generate-random", "--number-of-bytes", "64"))["Plaintext"]
    )
    assert len(random) == 64


# -- errors -----------------------------------------------------------------------------


def test_cli_error_exits_255_and_names_the_aws_error(server: Any) -> None:
    unknown = "11111111-2222-3333-4444-555555555555"
    result = aws_cli(server, "describe-key", "--key-id", unknown, check=False)
    assert result.returncode == 255
    assert result.stderr.strip() == (
        "An error occurred (NotFoundException) when calling the DescribeKey operation: "
        f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{unknown}' does not exist"
    )
    assert result.stdout == ""


def test_cli_decrypt_with_wrong_context_fails(
    server: Any, kms: Any, key: dict[str, Any], tmp_path: Path
) -> None:
    blob = tmp_path / "b.enc"
    blob.write_bytes(
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "1"})[
            "CiphertextBlob"
        ]
    )
    result = aws_cli(
        server,
        "decrypt",
        "--ciphertext-blob",
        f"fileb://{blob}",
        "--encryption-context",
        "a=2",
        check=False,
    )
    assert result.returncode == 255
    assert (
        "An error occurred (InvalidCiphertextException) when calling the Decrypt operation"
        in result.stderr
    )


# -- the README, as written -------------------------------------------------------------


def _readme_env(server: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(server.data_dir / "credentials"),
        AWS_PROFILE="strongroom",
        AWS_CONFIG_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
    )
    return env


def test_readme_quickstart_with_the_credentials_file(server: Any, kms: Any, tmp_path: Path) -> None:
    env = _readme_env(server)
    exe = shutil.which("aws") or "aws"
    # `aws kms list-keys --endpoint-url http://127.0.0.1:4599 --region us-east-1`, as written.
    result = subprocess.run(
        [exe, "kms", "list-keys", "--endpoint-url", server.endpoint, "--region", "us-east-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert all(k["KeyArn"].endswith(k["KeyId"]) for k in listed["Keys"])
    key_id = aws_text(
        server, "create-key", "--description", "demo", "--query", "KeyMetadata.KeyId", env=env
    )
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "demo"
    alias = unique_alias("demo")
    aws_text(server, "create-alias", "--alias-name", alias, "--target-key-id", key_id, env=env)
    small = tmp_path / "note.txt"
    small.write_bytes(README.read_bytes()[:4096])
    blob = aws_text(
        server,
        "encrypt",
        "--key-id",
        alias,
        "--plaintext",
        f"fileb://{small}",
        "--query",
        "CiphertextBlob",
        env=env,
    )
    assert kms.decrypt(CiphertextBlob=base64.b64decode(blob))["Plaintext"] == small.read_bytes()


def _readme_block(heading: str, index: int) -> str:
    """The ``index``-th fenced code block after ``heading`` in the README."""
    text = README.read_text().split(heading, 1)[1]
    return text.split("```")[1 + 2 * index].split("\n", 1)[1]


def _readme_client_env(server: Any, cwd: Path) -> dict[str, str]:
    """The environment of a shell that ran the quickstart's ``eval "$(strongroom env)"`` in
    ``cwd``, whose ``strongroom-data`` is this server's data directory (so the ``config`` file
    names this server's real port), with no other AWS_* variable."""
    (cwd / "strongroom-data").symlink_to(server.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1")
    return env


def test_readme_quickstart_cli_block_runs_as_written(server: Any, kms: Any, tmp_path: Path) -> None:
    """The README's AWS CLI quickstart, run by bash as written: ``strongroom env`` and the
    ``config`` file of the first start are all the CLI needs (no --endpoint-url)."""
    env = _readme_client_env(server, tmp_path)
    script = _readme_block("## Quickstart", 0)
    assert "--endpoint-url" not in script and 'eval "$(strongroom env)"' in script
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("my secret")  # the decrypt, the block's last line
    blob = (tmp_path / "secret.enc").read_bytes()
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"my secret"


def test_readme_quickstart_boto3_block_runs_as_written(server: Any, tmp_path: Path) -> None:
    """The README's boto3 quickstart in a shell where ``eval "$(strongroom env)"`` ran."""
    env = _readme_client_env(server, tmp_path)
    code = _readme_block("## Quickstart", 1)
    assert "endpoint_url" not in code
    script = f'eval "$(strongroom env)"\nexec {shlex.quote(sys.executable)} -c "$CODE"'
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**env, "CODE": code},
    )
    assert result.returncode == 0, result.stderr


def test_readme_boto3_example(server: Any) -> None:
    import configparser

    creds = configparser.ConfigParser()
    creds.read(server.data_dir / "credentials")
    kms = make_client(
        server.endpoint,
        creds["strongroom"]["aws_access_key_id"],
        creds["strongroom"]["aws_secret_access_key"],
    )
    key_id = kms.create_key(Description="demo")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionContext={"app": "demo"})[
        "CiphertextBlob"
    ]
    assert (
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "demo"})["Plaintext"]
        == b"secret"
    )


def test_credentials_file_is_private(server: Any) -> None:
    assert (server.data_dir / "credentials").stat().st_mode & 0o777 == 0o600
    assert (server.data_dir / "root.key").stat().st_mode & 0o777 == 0o600


# -- the strongroom command -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], ["serve", "admin", "audit"]),
        (["serve", "--help"], ["--port", "--data-dir", "--database-url", "--dev", "--workers"]),
        (
            ["admin", "--help"],
            ["create-account", "create-user", "create-access-key", "list-access-keys"],
        ),
        (["audit", "--help"], ["events", "verify"]),
        (["audit", "events", "--help"], ["--since", "--key", "--event-name", "--principal"]),
    ],
)
def test_strongroom_help_exits_0(args: list[str], expected: list[str]) -> None:
    result = run_strongroom(args, check=False)
    assert result.returncode == 0, result.stderr
    for word in expected:
        assert word in result.stdout


def test_strongroom_without_command_fails() -> None:
    result = run_strongroom([], check=False)
    assert result.returncode != 0
    assert "usage" in result.stderr.lower()


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[Any]:
    server = start_server(tmp_path / "data", None, "--dev")
    yield server
    stop_server(server)


def test_dev_mode_accepts_any_credentials_and_warns(dev_server: Any) -> None:
    log = dev_server.log_path.read_text()
    assert "--dev" in log and "WARNING" in log
    dummy = make_client(dev_server.endpoint, "AKIDDUMMY", "dummy")
    meta = dummy.create_key(Description="dev")["KeyMetadata"]
    assert meta["AWSAccountId"] == ACCOUNT
    blob = dummy.encrypt(KeyId=meta["KeyId"], Plaintext=b"dev")["CiphertextBlob"]
    assert (
        make_client(dev_server.endpoint, "AKIDOTHER", "other").decrypt(CiphertextBlob=blob)[
            "Plaintext"
        ]
        == b"dev"
    )
    # The real admin key still works, and sees the same account.
    assert meta["KeyId"] in {k["KeyId"] for k in dev_server.client().list_keys(Limit=1000)["Keys"]}
    # Such callers are the account root, and STS GetCallerIdentity says so (its UserId is the
    # account id: IAM User Guide, policy variables, aws:userid of the account root).
    sts = dev_server.client("sts", access_key_id="AKIDDUMMY", secret_access_key="dummy")
    assert sts.get_caller_identity() | {"ResponseMetadata": None} == {
        "UserId": ACCOUNT,
        "Account": ACCOUNT,
        "Arn": f"arn:aws:iam::{ACCOUNT}:root",
        "ResponseMetadata": None,
    }


def test_without_dev_mode_arbitrary_credentials_are_refused(server: Any) -> None:
    dummy = make_client(server.endpoint, "AKIDDUMMY", "dummy")
    assert_kms_error(
        "UnrecognizedClientException",
        dummy.list_keys,
        message="The security token included in the request is invalid.",
    )
    assert "--dev" not in server.log_path.read_text()
