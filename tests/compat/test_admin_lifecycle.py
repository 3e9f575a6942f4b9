"""``strongroom admin`` against a running server: delete-user and delete-role (refused while
access keys or sessions are live, unless --force), delete-access-key taking effect at once,
and create-access-key --as-profile writing a credentials-file profile that clients use."""

from __future__ import annotations

import configparser
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from conftest import REGION, run_in_process

from ._support import ACCOUNT, ALL_KMS, assert_kms_error, eventually, new_principal, put_policy

pytestmark = pytest.mark.compat

INVALID_TOKEN = "The security token included in the request is invalid."


def _admin(server: Any, *args: str) -> Any:
    """``strongroom admin ARGS`` that must succeed; its JSON output."""
    return json.loads(server.admin(*args).stdout)


def _refused(server: Any, *args: str) -> str:
    """``strongroom admin ARGS`` that must fail in one line; that line."""
    result = run_in_process(["admin", *args, *server.storage_args()], check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: "), result.stderr
    return lines[0]


def _assert_refused_soon(client: Any) -> None:
    """Within a change poll the server answers UnrecognizedClientException."""
    eventually(
        lambda: assert_kms_error(
            "UnrecognizedClientException", client.list_keys, message=INVALID_TOKEN
        )
    )


def test_delete_user_refuses_while_it_has_keys_and_force_revokes_them(server: Any) -> None:
    user = new_principal(server, "doomed", policy=ALL_KMS)
    _admin(server, "tag-user", user["name"], "team=blue")
    user["client"].list_keys()  # the key works, and the server has cached it
    line = _refused(server, "delete-user", user["name"])
    assert "ConflictException" in line and user["AccessKeyId"] in line and "--force" in line
    user["client"].list_keys()  # refused: nothing changed
    deleted = _admin(server, "delete-user", user["name"], "--force")
    assert deleted == {"Deleted": user["arn"], "DeletedAccessKeys": [user["AccessKeyId"]]}
    _assert_refused_soon(user["client"])
    principals = {p["Arn"] for p in _admin(server, "list-principals")}
    assert user["arn"] not in principals
    assert _admin(server, "list-access-keys", "--principal", user["arn"]) == []
    # A new user of that name starts bare: the old one's policies and tags went with it.
    _admin(server, "create-user", user["name"])
    assert _admin(server, "list-user-policies", user["name"])["PolicyNames"] == []
    assert _admin(server, "list-user-tags", user["name"])["Tags"] == []
    _admin(server, "delete-user", user["name"])  # no keys: no --force needed


def _session_client(server: Any, credentials: dict[str, str]) -> Any:
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"max_attempts": 0}),
    )


def test_delete_role_refuses_while_sessions_live_and_force_ends_them(
    server: Any, tmp_path: Path
) -> None:
    name = f"doomed-role-{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    _admin(server, "create-role", name)
    put_policy(server, "put-role-policy", name, ALL_KMS)
    _admin(server, "tag-role", name, "team=red")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    put_policy(server, "update-assume-role-policy", name, trust)
    issued = _admin(server, "assume-role", "--role-arn", arn, "--session-name", "worker")
    client = _session_client(server, issued["Credentials"])
    client.list_keys()
    line = _refused(server, "delete-role", name)
    assert "ConflictException" in line and "1 unexpired session" in line and "--force" in line
    client.list_keys()
    deleted = _admin(server, "delete-role", name, "--force")
    assert deleted == {"Deleted": arn, "DeletedSessions": [issued["Credentials"]["AccessKeyId"]]}
    _assert_refused_soon(client)
    # A new role of that name starts bare: policies, tags and trust policy went with it.
    _admin(server, "create-role", name)
    assert _admin(server, "list-role-policies", name)["PolicyNames"] == []
    role = _admin(server, "get-role", name)["Role"]
    assert role["Tags"] == []
    assert role["AssumeRolePolicyDocument"] != trust
    _admin(server, "delete-role", name)  # no sessions: no --force needed


def test_delete_access_key_stops_it_on_a_running_server(server: Any) -> None:
    user = new_principal(server, "revoked", policy=ALL_KMS)
    user["client"].list_keys()
    assert (
        _admin(server, "delete-access-key", user["AccessKeyId"])["Deleted"] == user["AccessKeyId"]
    )
    _assert_refused_soon(user["client"])


def test_key_policy_naming_a_deleted_user_keeps_its_text(server: Any, kms: Any) -> None:
    user = new_principal(server, "named")
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": user["arn"]},
                    "Action": "kms:Encrypt",
                    "Resource": "*",
                },
            ],
        }
    )
    key_id = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    _admin(server, "delete-user", user["name"], "--force")
    stored = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    assert json.loads(stored) == json.loads(policy)


# -- create-access-key --as-profile -----------------------------------------------------


def _profile_client(server: Any, credentials_file: Path, profile: str) -> Any:
    import botocore.session

    session = botocore.session.Session(profile=profile)
    session.set_config_variable("credentials_file", str(credentials_file))
    return boto3.Session(botocore_session=session).client(
        "kms", endpoint_url=server.endpoint, region_name=REGION
    )


def test_create_access_key_as_profile_appends_a_working_profile(
    server: Any, tmp_path: Path
) -> None:
    user = new_principal(server, "profiled", policy=ALL_KMS)
    path = tmp_path / "credentials"
    path.write_text("[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = x")
    path.chmod(0o644)
    out = _admin(
        server,
        "create-access-key",
        user["arn"],
        "--as-profile",
        "app",
        "--credentials-file",
        str(path),
    )
    assert out["Profile"] == "app" and out["CredentialsFile"] == str(path)
    assert "SecretAccessKey" not in out  # the secret went to the file only
    assert path.stat().st_mode & 0o777 == 0o600
    parsed = configparser.ConfigParser()
    parsed.read(path)
    assert parsed.sections() == ["other", "app"]
    assert parsed["app"]["aws_access_key_id"] == out["AccessKeyId"]
    _profile_client(server, path, "app").list_keys()


def test_create_access_key_as_existing_profile_is_refused_and_makes_no_key(
    server: Any, tmp_path: Path
) -> None:
    user = new_principal(server, "twice")
    path = tmp_path / "credentials"
    args = [
        "create-access-key",
        user["arn"],
        "--as-profile",
        "dup",
        "--credentials-file",
        str(path),
    ]
    _admin(server, *args)
    before = path.read_text()
    line = _refused(server, *args)
    assert "already has a profile [dup]" in line and str(path) in line
    assert path.read_text() == before
    assert len(_admin(server, "list-access-keys", "--principal", user["arn"])) == 2


def test_create_access_key_as_profile_defaults_to_the_data_directory(server: Any) -> None:
    user = new_principal(server, "defaulted", policy=ALL_KMS)
    profile = f"p-{uuid.uuid4().hex[:8]}"
    out = _admin(server, "create-access-key", user["arn"], "--as-profile", profile)
    path = server.data_dir / "credentials"
    assert out["CredentialsFile"] == str(path)
    parsed = configparser.ConfigParser()
    parsed.read(path)
    assert parsed["strongroom"]["aws_access_key_id"] == server.access_key_id
    assert parsed[profile]["aws_access_key_id"] == out["AccessKeyId"]
    _profile_client(server, path, profile).list_keys()


def test_create_access_key_for_unknown_principal_leaves_no_file(
    server: Any, tmp_path: Path
) -> None:
    path = tmp_path / "credentials"
    arn = f"arn:aws:iam::{ACCOUNT}:user/nobody-{uuid.uuid4().hex[:8]}"
    line = _refused(
        server, "create-access-key", arn, "--as-profile", "x", "--credentials-file", str(path)
    )
    assert "NotFoundException" in line
    assert not path.exists()
