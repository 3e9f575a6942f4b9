"""Roles that can be assumed, temporary credentials and principal tags through real clients:
`strongroom admin assume-role` and the STS AssumeRole endpoint (boto3's STS client), the
session token rules, trust policies, aws:PrincipalTag conditions, and the audit trail."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from alembic import command
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import Server, run_in_process, run_strongroom
from strongroom.keystores.filekey import FileRootKey
from strongroom.storage.migrate import alembic_config

from ._in_process import InProcess, fresh_database, in_process
from ._support import (
    ACCOUNT,
    ALL_KMS,
    REGION,
    assert_kms_error,
    audit_events,
    eventually,
    new_principal,
    stored_files,
)

pytestmark = pytest.mark.compat

INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
ASIA_RE = re.compile(r"ASIA[A-Z2-7]{16}")


# -- helpers -------------------------------------------------------------------------------


def _admin_with_document(server: Any, document: Mapping[str, Any], *args: str) -> Any:
    """``strongroom admin ARGS... FILE`` with ``document`` written to FILE."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(document, f)
    try:
        return run_strongroom(["admin", *args, f.name, *server.storage_args()], check=False)
    finally:
        os.unlink(f.name)


def _policy(*statements: Mapping[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: str | list[str], resource: str = "*", **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _trust(*principals: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": list(principals)},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return _policy(statement)


def _role(
    server: Any,
    prefix: str,
    *create: str,
    policy: Mapping[str, Any] | None = None,
    trust: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """A new role (``create``: more options of create-role) with ``policy`` as its identity
    policy and ``trust`` as its trust policy (the default, trusting the account, when None)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    server.admin("create-role", name, *create)
    if policy is not None:
        assert _admin_with_document(server, policy, "put-role-policy", name).returncode == 0
    if trust is not None:
        out = _admin_with_document(server, trust, "update-assume-role-policy", name)
        assert out.returncode == 0, out.stderr
    return {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}


def _session_arn(role: Mapping[str, str], session: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['name']}/{session}"


def _admin_assume(server: Any, role_arn: str, session: str = "app", *extra: str) -> dict[str, Any]:
    out = server.admin("assume-role", "--role-arn", role_arn, "--session-name", session, *extra)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def _client(
    endpoint: str,
    credentials: Mapping[str, Any],
    service: str = "kms",
    *,
    token: str | None = None,
    use_token: bool = True,
    validate: bool = True,
) -> Any:
    """A boto3 client signing with ``credentials`` (STS's Credentials shape); the session
    token is ``token`` when given, left out when ``use_token`` is false."""
    session_token = (token or credentials["SessionToken"]) if use_token else None
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=session_token,
        config=Config(retries={"max_attempts": 0}, parameter_validation=validate),
    )


def _sts(server: Any, principal: Mapping[str, Any], *, validate: bool = True) -> Any:
    return _client(server.endpoint, principal, "sts", use_token=False, validate=validate)


def _key_for(kms: Any, *principals: str, condition: Mapping[str, Any] | None = None) -> Any:
    """A key whose policy delegates to the account and lets ``principals`` use it."""
    use: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": list(principals)},
        "Action": USE_ACTIONS,
        "Resource": "*",
    }
    if condition:
        use["Condition"] = condition
    root = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    policy = json.dumps(_policy(root, use))
    return kms.create_key(Description="identities", Policy=policy)["KeyMetadata"]


def _denied(who: str, action: str, resource: str, policy_type: str = "identity-based") -> str:
    return (
        f"User: {who} is not authorized to perform: {action} on resource: {resource} "
        f"because no {policy_type} policy allows the {action} action"
    )


def _round_trip(client: Any, key: Mapping[str, Any]) -> None:
    blob = client.encrypt(KeyId=key["Arn"], Plaintext=b"session data")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=blob)["Plaintext"] == b"session data"
    assert client.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "Enabled"


def _fails(code: str, call: Any, /, **kwargs: Any) -> dict[str, Any]:
    """Like assert_kms_error, for the STS client: the error element of the reply."""
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error: dict[str, Any] = info.value.response["Error"]
    assert error["Code"] == code, error
    return error


# -- strongroom admin assume-role ----------------------------------------------------------


def test_admin_assume_role_issues_credentials_in_sts_shape(server: Server, kms: Any) -> None:
    role = _role(server, "worker", policy=ALL_KMS)
    before = datetime.now(UTC)
    issued = _admin_assume(server, role["arn"], "batch-1", "--duration-seconds", "900")
    creds = issued["Credentials"]
    assert set(creds) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert ASIA_RE.fullmatch(creds["AccessKeyId"]), creds["AccessKeyId"]
    expiration = datetime.fromisoformat(creds["Expiration"])
    assert (
        before + timedelta(seconds=898) <= expiration <= datetime.now(UTC) + timedelta(seconds=900)
    )
    user = issued["AssumedRoleUser"]
    assert user["Arn"] == _session_arn(role, "batch-1")
    assert re.fullmatch(r"AROA[A-Z2-7]{17}:batch-1", user["AssumedRoleId"]), user
    key = kms.create_key(Description="for a session")["KeyMetadata"]
    _round_trip(_client(server.endpoint, creds), key)


def test_admin_assume_role_prints_a_credentials_file_profile(
    server: Server, kms: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = _role(server, "profiled", policy=ALL_KMS)
    out = server.admin(
        "assume-role", "--role-arn", role["arn"], "--session-name", "cli", "--as-profile", "tmp"
    )
    path = tmp_path / "credentials"
    path.write_text(out.stdout)
    profile = configparser.ConfigParser()
    profile.read(path)
    assert ASIA_RE.fullmatch(profile["tmp"]["aws_access_key_id"])
    # The SDK reads the profile as written, session token included.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    client = boto3.Session(profile_name="tmp").client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        config=Config(retries={"max_attempts": 0}),
    )
    _round_trip(client, kms.create_key(Description="profile")["KeyMetadata"])


def test_admin_assume_role_refuses_bad_requests(server: Server) -> None:
    role = _role(server, "strict")
    cases = [
        (
            ["--session-name", "ok", "--duration-seconds", "899"],
            role["arn"],
            "ValidationException: 1 validation error detected: Value '899' at "
            "'durationSeconds' failed to satisfy constraint: Member must have value greater "
            "than or equal to 900",
        ),
        (["--session-name", "x"], role["arn"], "at 'roleSessionName' failed to satisfy"),
        (
            ["--session-name", "ok"],
            f"arn:aws:iam::{ACCOUNT}:user/admin",
            "ValidationException: Request ARN is invalid",
        ),
        (
            ["--session-name", "ok"],
            f"arn:aws:iam::{ACCOUNT}:role/nobody-{uuid.uuid4().hex[:6]}",
            "NotFoundException",
        ),
    ]
    for extra, arn, expected in cases:
        out = run_strongroom(
            ["admin", "assume-role", "--role-arn", arn, *extra, *server.storage_args()],
            check=False,
        )
        assert out.returncode != 0 and expected in out.stderr, (extra, out.stderr)


# -- using temporary credentials -------------------------------------------------------------


def test_session_uses_a_key_whose_policy_names_the_role_or_the_session(
    server: Server, kms: Any
) -> None:
    role = _role(server, "keyuser")  # no identity policy: key policies alone decide
    creds = _admin_assume(server, role["arn"], "s1")["Credentials"]
    session = _client(server.endpoint, creds)
    _round_trip(session, _key_for(kms, role["arn"]))
    _round_trip(session, _key_for(kms, _session_arn(role, "s1")))

    other_session = _client(
        server.endpoint, _admin_assume(server, role["arn"], "s2")["Credentials"]
    )
    only_s1 = _key_for(kms, _session_arn(role, "s1"))
    assert_kms_error(
        "AccessDeniedException",
        other_session.encrypt,
        KeyId=only_s1["Arn"],
        Plaintext=b"x",
        message=_denied(_session_arn(role, "s2"), "kms:Encrypt", only_s1["Arn"]),
    )
    plain = kms.create_key(Description="default policy")["KeyMetadata"]
    assert_kms_error(
        "AccessDeniedException",
        session.encrypt,
        KeyId=plain["Arn"],
        Plaintext=b"x",
        message=_denied(_session_arn(role, "s1"), "kms:Encrypt", plain["Arn"]),
    )
    assert kms.describe_key(KeyId=plain["Arn"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_role_identity_policies_apply_to_its_sessions_and_changes_reach_them(
    server: Server, kms: Any, key: dict[str, Any]
) -> None:
    role = _role(server, "encrypter", policy=_policy(_allow(["kms:Encrypt", "kms:DescribeKey"])))
    session = _client(server.endpoint, _admin_assume(server, role["arn"])["Credentials"])
    blob = session.encrypt(KeyId=key["Arn"], Plaintext=b"one way")["CiphertextBlob"]
    assert_kms_error(
        "AccessDeniedException",
        session.decrypt,
        CiphertextBlob=blob,
        message=_denied(_session_arn(role, "app"), "kms:Decrypt", key["Arn"]),
    )
    allow_all = _policy(_allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]))
    assert _admin_with_document(server, allow_all, "put-role-policy", role["name"]).returncode == 0
    assert eventually(lambda: session.decrypt(CiphertextBlob=blob))["Plaintext"] == b"one way"
    assert session.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_temporary_credentials_need_their_own_session_token(
    server: Server, kms: Any, key: dict[str, Any]
) -> None:
    role = _role(server, "tokens", policy=ALL_KMS)
    a = _admin_assume(server, role["arn"], "sa")["Credentials"]
    b = _admin_assume(server, role["arn"], "sb")["Credentials"]
    token = a["SessionToken"]
    tampered = token[:-5] + ("AAAA=" if not token.endswith("AAAA=") else "BBBB=")
    refused = {
        "no token": _client(server.endpoint, a, use_token=False),
        "another session's token": _client(server.endpoint, a, token=b["SessionToken"]),
        "a tampered token": _client(server.endpoint, a, token=tampered),
        "a long-term key with a token": _client(
            server.endpoint,
            {"AccessKeyId": server.access_key_id, "SecretAccessKey": server.secret_access_key},
            token=token,
        ),
    }
    for what, client in refused.items():
        response = assert_kms_error(
            "UnrecognizedClientException", client.describe_key, KeyId=key["Arn"]
        )
        assert response["Error"]["Message"] == INVALID_TOKEN, what
    assert _client(server.endpoint, a).describe_key(KeyId=key["Arn"])["KeyMetadata"]["Enabled"]
    assert _client(server.endpoint, b).describe_key(KeyId=key["Arn"])["KeyMetadata"]["Enabled"]


# -- the STS endpoint ------------------------------------------------------------------------


def test_sts_assume_role_by_a_user_an_identity_policy_allows(server: Server, kms: Any) -> None:
    role = _role(server, "app")
    key = _key_for(kms, role["arn"])
    user = new_principal(server, "caller", policy=_policy(_allow("sts:AssumeRole", role["arn"])))
    before = datetime.now(UTC).replace(microsecond=0)
    reply = _sts(server, user).assume_role(
        RoleArn=role["arn"], RoleSessionName="web-1", DurationSeconds=900
    )
    creds = reply["Credentials"]
    assert ASIA_RE.fullmatch(creds["AccessKeyId"]) and creds["SessionToken"]
    assert before + timedelta(seconds=900) <= creds["Expiration"]
    assert creds["Expiration"] <= datetime.now(UTC) + timedelta(seconds=900)
    assert reply["AssumedRoleUser"]["Arn"] == _session_arn(role, "web-1")
    assert reply["AssumedRoleUser"]["AssumedRoleId"].endswith(":web-1")
    _round_trip(_client(server.endpoint, creds), key)
    # Without DurationSeconds a session lasts an hour.
    reply = _sts(server, user).assume_role(RoleArn=role["arn"], RoleSessionName="web-2")
    lasts = reply["Credentials"]["Expiration"] - datetime.now(UTC)
    assert timedelta(seconds=3590) < lasts <= timedelta(seconds=3600)


def test_sts_refuses_what_the_trust_and_identity_policies_do_not_allow(server: Server) -> None:
    role = _role(server, "guarded")
    nobody = new_principal(server, "nobody")
    error = _fails(
        "AccessDenied",
        _sts(server, nobody).assume_role,
        RoleArn=role["arn"],
        RoleSessionName="s1",
    )
    assert error["Message"] == _denied(nobody["arn"], "sts:AssumeRole", role["arn"])

    # A trust policy naming the user lets it in without an identity policy...
    named = _role(server, "named", trust=_trust(nobody["arn"]))
    reply = _sts(server, nobody).assume_role(RoleArn=named["arn"], RoleSessionName="s1")
    assert reply["AssumedRoleUser"]["Arn"] == _session_arn(named, "s1")
    # ... and one naming somebody else keeps out even a user whose policy allows it.
    eager = new_principal(server, "eager", policy=_policy(_allow("sts:AssumeRole")))
    error = _fails(
        "AccessDenied", _sts(server, eager).assume_role, RoleArn=named["arn"], RoleSessionName="s1"
    )
    assert error["Message"] == _denied(
        eager["arn"], "sts:AssumeRole", named["arn"], "resource-based"
    )
    # The root of the account may not assume roles, and a role that does not exist is
    # refused like one that is not allowed.
    missing = f"arn:aws:iam::{ACCOUNT}:role/missing-{uuid.uuid4().hex[:6]}"
    error = _fails(
        "AccessDenied", _sts(server, eager).assume_role, RoleArn=missing, RoleSessionName="s1"
    )
    assert error["Message"].startswith(
        f"User: {eager['arn']} is not authorized to perform: sts:AssumeRole on resource: {missing}"
    )


def test_sts_trust_policy_conditions_see_external_id_and_session_name(server: Server) -> None:
    caller = new_principal(server, "partner")
    trust = _trust(
        caller["arn"],
        StringEquals={"sts:ExternalId": "Xy-42"},
        StringLike={"sts:RoleSessionName": "partner-*"},
    )
    role = _role(server, "partnered", trust=trust)
    sts = _sts(server, caller)
    for kwargs in (
        {"RoleSessionName": "partner-1"},
        {"RoleSessionName": "partner-1", "ExternalId": "xy-42"},
        {"RoleSessionName": "other", "ExternalId": "Xy-42"},
    ):
        _fails("AccessDenied", sts.assume_role, RoleArn=role["arn"], **kwargs)
    reply = sts.assume_role(RoleArn=role["arn"], RoleSessionName="partner-1", ExternalId="Xy-42")
    assert reply["AssumedRoleUser"]["Arn"] == _session_arn(role, "partner-1")


def test_sts_validates_assume_role_requests(server: Server) -> None:
    role = _role(server, "validated")
    caller = new_principal(server, "validator", policy=_policy(_allow("sts:AssumeRole")))
    sts = _sts(server, caller, validate=False)
    ok = {"RoleArn": role["arn"], "RoleSessionName": "ok"}
    prefix = "1 validation error detected: "
    cases = [
        (
            {"DurationSeconds": 899},
            prefix + "Value '899' at 'durationSeconds' failed to satisfy constraint: "
            "Member must have value greater than or equal to 900",
        ),
        (
            {"DurationSeconds": 43201},
            prefix + "Value '43201' at 'durationSeconds' failed to satisfy constraint: "
            "Member must have value less than or equal to 43200",
        ),
        (
            {"RoleSessionName": "a"},
            prefix + "Value 'a' at 'roleSessionName' failed to satisfy constraint: "
            "Member must have length greater than or equal to 2",
        ),
        (
            {"RoleSessionName": "has space"},
            prefix + "Value 'has space' at 'roleSessionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ),
        ({"RoleArn": f"arn:aws:iam::{ACCOUNT}:user/admin"}, "Request ARN is invalid"),
        (
            {"Policy": json.dumps(ALL_KMS)},
            "AssumeRole parameter Policy is not supported by this server.",
        ),
    ]
    for change, message in cases:
        error = _fails("ValidationError", sts.assume_role, **{**ok, **change})
        assert error["Message"] == message, change
    error = _fails("InvalidAction", sts.get_session_token)
    assert error["Message"] == "Could not find operation GetSessionToken for version 2011-06-15"


def test_role_chaining_is_limited_to_an_hour(server: Server) -> None:
    # Even for a role whose own maximum is 12 hours.
    second = _role(server, "second", "--max-session-duration", "43200")
    first = _role(server, "first", policy=_policy(_allow("sts:AssumeRole", second["arn"])))
    creds = _admin_assume(server, first["arn"], "hop")["Credentials"]
    sts = _client(server.endpoint, creds, "sts")
    error = _fails(
        "ValidationError",
        sts.assume_role,
        RoleArn=second["arn"],
        RoleSessionName="hop2",
        DurationSeconds=3601,
    )
    assert error["Message"] == (
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining."
    )
    reply = sts.assume_role(RoleArn=second["arn"], RoleSessionName="hop2", DurationSeconds=3600)
    assert reply["AssumedRoleUser"]["Arn"] == _session_arn(second, "hop2")


def test_sts_requests_need_valid_credentials(server: Server) -> None:
    role = _role(server, "sigs", policy=_policy(_allow("sts:AssumeRole")))
    creds = _admin_assume(server, role["arn"])["Credentials"]
    for client in (
        _client(server.endpoint, creds, "sts", use_token=False),
        _client(server.endpoint, {**creds, "AccessKeyId": "AKIAUNKNOWNUNKNOWN00"}, "sts"),
    ):
        error = _fails(
            "InvalidClientTokenId", client.assume_role, RoleArn=role["arn"], RoleSessionName="s1"
        )
        assert error["Message"] == INVALID_TOKEN
    wrong_secret = _client(server.endpoint, {**creds, "SecretAccessKey": "x" * 40}, "sts")
    _fails(
        "SignatureDoesNotMatch", wrong_secret.assume_role, RoleArn=role["arn"], RoleSessionName="s1"
    )


# -- STS GetCallerIdentity -----------------------------------------------------------------
# Expectations from the STS API reference, "GetCallerIdentity" (UserId, Account, Arn; "No
# permissions are required to perform this operation. If an administrator attaches a policy
# to your identity that explicitly denies access to the sts:GetCallerIdentity action, you can
# still perform this operation"; its examples: a user's UserId is its unique id, a role
# session's ARN is arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION with UserId
# ROLE_ID:SESSION), and the IAM User Guide's policy-variables principal table (aws:userid is
# the account id for the account root; IAM "Unique identifiers": AIDA users, AROA roles).

AIDA_RE = re.compile(r"AIDA[A-Z2-7]{17}")


def test_sts_get_caller_identity_of_users_even_when_denied(server: Server) -> None:
    deny_all = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    denied = new_principal(server, "whoami-denied", policy=_policy(deny_all))
    plain = new_principal(server, "whoami")
    answers = [_sts(server, user).get_caller_identity() for user in (denied, plain, plain)]
    for user, answer in zip((denied, plain, plain), answers, strict=True):
        assert answer["Arn"] == user["arn"]
        assert answer["Account"] == ACCOUNT
        assert AIDA_RE.fullmatch(answer["UserId"]), answer
    # A user's id is its own, and the same on every call.
    assert answers[1]["UserId"] == answers[2]["UserId"] != answers[0]["UserId"]

    (event,) = _audit(server, "--principal", denied["arn"], "--event-name", "GetCallerIdentity")
    assert event["eventSource"] == "sts.amazonaws.com"
    assert event["readOnly"] is True and "errorCode" not in event
    assert event["userIdentity"]["arn"] == denied["arn"]
    assert event["userIdentity"]["accessKeyId"] == denied["AccessKeyId"]


def test_sts_get_caller_identity_of_a_role_session(server: Server) -> None:
    role = _role(server, "whoami-role")
    user = new_principal(server, "whoami-assumer", policy=_policy(_allow("sts:AssumeRole")))
    reply = _sts(server, user).assume_role(RoleArn=role["arn"], RoleSessionName="who-am-i")
    session = _client(server.endpoint, reply["Credentials"], "sts")
    answer = session.get_caller_identity()
    role_id = json.loads(server.admin("get-role", role["name"]).stdout)["Role"]["RoleId"]
    assert answer["Arn"] == _session_arn(role, "who-am-i") == reply["AssumedRoleUser"]["Arn"]
    assert answer["UserId"] == f"{role_id}:who-am-i" == reply["AssumedRoleUser"]["AssumedRoleId"]
    assert answer["Account"] == ACCOUNT
    # Temporary credentials without their session token are refused, here as everywhere.
    error = _fails(
        "InvalidClientTokenId",
        _client(server.endpoint, reply["Credentials"], "sts", use_token=False).get_caller_identity,
    )
    assert error["Message"] == INVALID_TOKEN


def test_sts_get_caller_identity_of_the_account_root(server: Server) -> None:
    root_arn = f"arn:aws:iam::{ACCOUNT}:root"
    creds = json.loads(server.admin("create-access-key", root_arn).stdout)
    answer = _sts(server, creds).get_caller_identity()
    assert (answer["UserId"], answer["Account"], answer["Arn"]) == (ACCOUNT, ACCOUNT, root_arn)


def test_aws_cli_sts_get_caller_identity(server: Server) -> None:
    user = new_principal(server, "whoami-cli")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": user["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": user["SecretAccessKey"],
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run(
        [
            shutil.which("aws") or "aws",
            "sts",
            "get-caller-identity",
            "--endpoint-url",
            server.endpoint,
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    answer = json.loads(out.stdout)
    assert answer["Arn"] == user["arn"] and answer["Account"] == ACCOUNT
    assert AIDA_RE.fullmatch(answer["UserId"]), answer


# -- a role's maximum session duration (IAM MaxSessionDuration) ------------------------------

OVER_ROLE_MAXIMUM = (
    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
)


def _shown_maximum(server: Any, name: str) -> int:
    role: dict[str, Any] = json.loads(server.admin("get-role", name).stdout)["Role"]
    return int(role["MaxSessionDuration"])


def _admin_fails(server: Any, *args: str) -> str:
    """``strongroom admin ARGS...`` that must fail; its standard error."""
    out = run_in_process(["admin", *args, *server.storage_args()], check=False)
    assert out.returncode != 0, out.stdout
    return out.stderr


def test_role_max_session_duration_is_set_shown_and_validated(server: Server) -> None:
    plain = _role(server, "onehour")
    assert _shown_maximum(server, plain["name"]) == 3600
    name = f"longer-{uuid.uuid4().hex[:8]}"
    out = server.admin("create-role", name, "--max-session-duration", "7200")
    assert json.loads(out.stdout) == {
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AccountId": ACCOUNT,
        "MaxSessionDuration": 7200,
    }
    assert _shown_maximum(server, name) == 7200
    out = server.admin("update-role", plain["name"], "--max-session-duration", "43200")
    assert json.loads(out.stdout) == {"Arn": plain["arn"], "MaxSessionDuration": 43200}
    assert _shown_maximum(server, plain["name"]) == 43200

    prefix = "ValidationException: 1 validation error detected: Value "
    low = prefix + (
        "'3599' at 'maxSessionDuration' failed to satisfy constraint: Member must have "
        "value greater than or equal to 3600"
    )
    high = prefix + (
        "'43201' at 'maxSessionDuration' failed to satisfy constraint: Member must have "
        "value less than or equal to 43200"
    )
    refused = f"never-{uuid.uuid4().hex[:8]}"
    assert low in _admin_fails(server, "create-role", refused, "--max-session-duration", "3599")
    assert "NotFoundException" in _admin_fails(server, "get-role", refused)
    assert high in _admin_fails(server, "update-role", name, "--max-session-duration", "43201")
    assert _shown_maximum(server, name) == 7200
    assert "NotFoundException" in _admin_fails(
        server, "update-role", refused, "--max-session-duration", "7200"
    )
    assert "--max-session-duration" in _admin_fails(server, "update-role", name)


def test_sts_duration_is_limited_by_the_role_maximum(server: Server) -> None:
    plain = _role(server, "capped")
    longer = _role(server, "longer", "--max-session-duration", "7200")
    caller = new_principal(server, "durations", policy=_policy(_allow("sts:AssumeRole")))
    sts = _sts(server, caller)
    for role, too_long in ((plain, 3601), (longer, 7201), (longer, 43200)):
        error = _fails(
            "ValidationError",
            sts.assume_role,
            RoleArn=role["arn"],
            RoleSessionName="long",
            DurationSeconds=too_long,
        )
        assert error["Message"] == OVER_ROLE_MAXIMUM, (role, too_long)
    sts.assume_role(RoleArn=plain["arn"], RoleSessionName="hour", DurationSeconds=3600)
    before = datetime.now(UTC)
    reply = sts.assume_role(RoleArn=longer["arn"], RoleSessionName="two", DurationSeconds=7200)
    expiration = reply["Credentials"]["Expiration"]
    assert (
        before + timedelta(seconds=7198)
        <= expiration
        <= datetime.now(UTC) + timedelta(seconds=7200)
    )
    # A new maximum applies to the next AssumeRole.
    server.admin("update-role", longer["name"], "--max-session-duration", "10800")
    sts.assume_role(RoleArn=longer["arn"], RoleSessionName="three", DurationSeconds=10800)
    server.admin("update-role", longer["name"], "--max-session-duration", "3600")
    error = _fails(
        "ValidationError",
        sts.assume_role,
        RoleArn=longer["arn"],
        RoleSessionName="cut",
        DurationSeconds=3601,
    )
    assert error["Message"] == OVER_ROLE_MAXIMUM


def test_admin_assume_role_is_limited_by_the_role_maximum(server: Server) -> None:
    role = _role(server, "operated")
    args = ("assume-role", "--role-arn", role["arn"], "--session-name", "ops")
    stderr = _admin_fails(server, *args, "--duration-seconds", "7200")
    assert f"ValidationException: {OVER_ROLE_MAXIMUM}" in stderr
    server.admin("update-role", role["name"], "--max-session-duration", "7200")
    issued = _admin_assume(server, role["arn"], "ops", "--duration-seconds", "7200")
    expiration = datetime.fromisoformat(issued["Credentials"]["Expiration"])
    assert expiration > datetime.now(UTC) + timedelta(seconds=7000)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_roles_made_before_migration_0007_have_the_one_hour_default(
    tmp_path: Path, backend: str
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    FileRootKey.create(data / "root.key")  # the root key the old database was made with
    name = "older"
    arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    with fresh_database(backend) as url:
        engine = sa.create_engine(url or f"sqlite:///{data / 'strongroom.db'}")
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0006")
            conn.execute(
                sa.text("INSERT INTO accounts (account_id, created) VALUES (:a, :now)"),
                {"a": ACCOUNT, "now": time.time()},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO principals (arn, account_id, kind, name, created) "
                    "VALUES (:arn, :a, 'role', :name, :now)"
                ),
                {"arn": arn, "a": ACCOUNT, "name": name, "now": time.time()},
            )
        engine.dispose()
        storage = ["--data-dir", str(data)] + ([] if url is None else ["--database-url", url])

        def admin(*args: str, check: bool = True) -> Any:
            return run_in_process(["admin", *args, *storage], check=check)

        shown = json.loads(admin("get-role", name).stdout)["Role"]
        assert shown["Arn"] == arn and shown["MaxSessionDuration"] == 3600
        assume = ("assume-role", "--role-arn", arn, "--session-name", "old")
        out = admin(*assume, "--duration-seconds", "3601", check=False)
        assert out.returncode != 0 and OVER_ROLE_MAXIMUM in out.stderr
        admin("update-role", name, "--max-session-duration", "7200")
        admin(*assume, "--duration-seconds", "7200")


# -- long-term access keys are for users, not roles -------------------------------------------


def test_roles_get_no_long_term_access_keys_only_temporary_credentials(
    server: Server, kms: Any
) -> None:
    role = _role(server, "keyless", policy=ALL_KMS)
    out = run_strongroom(
        ["admin", "create-access-key", role["arn"], *server.storage_args()], check=False
    )
    assert out.returncode != 0, out.stdout
    assert (
        f"ValidationException: {role['arn']} is a role: roles cannot have long-term access "
        "keys, only temporary credentials (strongroom admin assume-role, or STS AssumeRole)."
    ) in out.stderr
    assert "SecretAccessKey" not in out.stdout
    listed = json.loads(server.admin("list-access-keys", "--principal", role["arn"]).stdout)
    assert listed == []
    # The role's sessions still get credentials, and users still get access keys.
    creds = _admin_assume(server, role["arn"], "keyless")["Credentials"]
    _round_trip(
        _client(server.endpoint, creds), kms.create_key(Description="keyless")["KeyMetadata"]
    )
    user = new_principal(server, "keyed", policy=ALL_KMS)
    assert user["AccessKeyId"].startswith("AKIA")
    _round_trip(user["client"], kms.create_key(Description="keyed")["KeyMetadata"])


# -- principal tags --------------------------------------------------------------------------


def _tags(server: Any, kind: str, name: str) -> list[dict[str, str]]:
    listed = json.loads(server.admin(f"list-{kind}-tags", name).stdout)
    assert listed["IsTruncated"] is False
    tags: list[dict[str, str]] = listed["Tags"]
    return tags


def test_user_tags_feed_principal_tag_conditions_on_a_running_server(
    server: Server, key: dict[str, Any]
) -> None:
    policy = _policy(
        _allow(["kms:Encrypt", "kms:DescribeKey"], StringEquals={"aws:PrincipalTag/Team": "blue"})
    )
    user = new_principal(server, "tagged", policy=policy)
    client, name = user["client"], user["name"]

    def allowed() -> None:
        client.encrypt(KeyId=key["Arn"], Plaintext=b"x")

    def refused() -> None:
        assert_kms_error(
            "AccessDeniedException",
            client.encrypt,
            KeyId=key["Arn"],
            Plaintext=b"x",
            message=_denied(user["arn"], "kms:Encrypt", key["Arn"]),
        )

    refused()
    # Condition key names are case-insensitive: tag "team" meets aws:PrincipalTag/Team.
    server.admin("tag-user", name, "team=blue", "office=")
    assert _tags(server, "user", name) == [
        {"Key": "office", "Value": ""},
        {"Key": "team", "Value": "blue"},
    ]
    eventually(allowed)
    # Values are case-sensitive; the key replaces "team" whatever its case.
    server.admin("tag-user", name, "TEAM=Blue")
    assert _tags(server, "user", name) == [
        {"Key": "office", "Value": ""},
        {"Key": "TEAM", "Value": "Blue"},
    ]
    eventually(refused)
    server.admin("tag-user", name, "Team=blue")
    eventually(allowed)
    server.admin("untag-user", name, "team")
    assert _tags(server, "user", name) == [{"Key": "office", "Value": ""}]
    eventually(refused)


def test_role_tags_reach_its_sessions_and_key_policy_conditions(server: Server, kms: Any) -> None:
    role = _role(server, "tagrole")
    key = _key_for(kms, role["arn"], condition={"StringEquals": {"aws:PrincipalTag/dept": "sec"}})
    session = _client(server.endpoint, _admin_assume(server, role["arn"])["Credentials"])
    who = _session_arn(role, "app")

    def allowed() -> None:
        _round_trip(session, key)

    def refused() -> None:
        assert_kms_error(
            "AccessDeniedException",
            session.encrypt,
            KeyId=key["Arn"],
            Plaintext=b"x",
            message=_denied(who, "kms:Encrypt", key["Arn"]),
        )

    refused()
    server.admin("tag-role", role["name"], "dept=sec")
    eventually(allowed)
    server.admin("tag-role", role["name"], "Dept=Sec")
    eventually(refused)
    server.admin("untag-role", role["name"], "DEPT")
    assert _tags(server, "role", role["name"]) == []
    refused()
    assert kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_tag_commands_refuse_what_iam_refuses(server: Server) -> None:
    name = new_principal(server, "badtags")["name"]
    too_many = [f"k{i}=v" for i in range(51)]
    cases = [
        (["aws:team=x"], "ValidationException: Tag key 'aws:team': keys beginning with aws:"),
        (
            ["a=1", "A=2"],
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
        ),
        (["team=blue!"], "ValidationException: Value of tag 'team' must be 0-256 characters"),
        (["k" * 129 + "=v"], "ValidationException: Tag key"),
        (too_many, "LimitExceededException: A user or role can have at most 50 tags"),
        (["no-equals"], "tag 'no-equals' must be KEY=VALUE"),
    ]
    for tags, expected in cases:
        out = run_strongroom(
            ["admin", "tag-user", name, *tags, *server.storage_args()], check=False
        )
        assert out.returncode != 0 and expected in out.stderr, (tags, out.stderr)
    assert _tags(server, "user", name) == []  # nothing half-written
    out = run_strongroom(
        ["admin", "tag-role", "no-such-role", "a=b", *server.storage_args()], check=False
    )
    assert out.returncode != 0 and "NotFoundException" in out.stderr


# -- trust policies ---------------------------------------------------------------------------


def test_trust_policy_is_shown_replaced_and_validated(server: Server) -> None:
    role = _role(server, "trusting")
    shown = json.loads(server.admin("get-role", role["name"]).stdout)["Role"]
    assert shown["Arn"] == role["arn"] and shown["RoleId"].startswith("AROA")
    assert shown["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
        }
    ]
    user = f"arn:aws:iam::{ACCOUNT}:user/admin"
    bad = [
        (
            {**_trust(user), "Statement": [{**_trust(user)["Statement"][0], "Resource": "*"}]},
            "Has prohibited field Resource",
        ),
        (
            _trust(f"arn:aws:iam::{ACCOUNT}:user/ghost-{uuid.uuid4().hex[:6]}"),
            "Policy contains a statement with one or more invalid principals.",
        ),
        (ALL_KMS, "a trust policy statement must have a Principal or NotPrincipal"),
    ]
    for document, expected in bad:
        out = _admin_with_document(server, document, "update-assume-role-policy", role["name"])
        assert out.returncode != 0, out.stdout
        assert "MalformedPolicyDocumentException" in out.stderr and expected in out.stderr
    assert (
        json.loads(server.admin("get-role", role["name"]).stdout)["Role"][
            "AssumeRolePolicyDocument"
        ]
        == shown["AssumeRolePolicyDocument"]
    )
    out = _admin_with_document(server, _trust(user), "update-assume-role-policy", role["name"])
    assert json.loads(out.stdout) == {"Arn": role["arn"]}
    assert json.loads(server.admin("get-role", role["name"]).stdout)["Role"][
        "AssumeRolePolicyDocument"
    ] == _trust(user)


@pytest.mark.parametrize(
    "command",
    [
        "tag-user",
        "untag-user",
        "list-user-tags",
        "tag-role",
        "untag-role",
        "list-role-tags",
        "update-assume-role-policy",
        "get-role",
        "update-role",
        "assume-role",
    ],
)
def test_new_admin_commands_have_help(command: str) -> None:
    out = run_strongroom(["admin", command, "--help"])
    assert out.returncode == 0 and f"strongroom admin {command}" in out.stdout


# -- audit -----------------------------------------------------------------------------------


def _audit(server: Any, *filters: str) -> list[dict[str, Any]]:
    return audit_events(server, *filters)[1]


def test_audit_shows_role_sessions_and_no_session_secrets(server: Server, kms: Any) -> None:
    role = _role(server, "audited")
    key = _key_for(kms, role["arn"])
    user = new_principal(server, "assumer", policy=_policy(_allow("sts:AssumeRole", role["arn"])))
    reply = _sts(server, user).assume_role(RoleArn=role["arn"], RoleSessionName="audit-me")
    creds = reply["Credentials"]
    session = _client(server.endpoint, creds)
    session.encrypt(KeyId=key["Arn"], Plaintext=b"audited")
    _fails(
        "AccessDenied",
        _sts(server, new_principal(server, "noone")).assume_role,
        RoleArn=role["arn"],
        RoleSessionName="denied",
    )

    session_arn = _session_arn(role, "audit-me")
    (event,) = _audit(server, "--principal", session_arn, "--event-name", "Encrypt")
    identity = event["userIdentity"]
    assert identity["type"] == "AssumedRole" and identity["arn"] == session_arn
    assert identity["accessKeyId"] == creds["AccessKeyId"]
    assert identity["principalId"] == reply["AssumedRoleUser"]["AssumedRoleId"]
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer == {
        "type": "Role",
        "principalId": reply["AssumedRoleUser"]["AssumedRoleId"].split(":")[0],
        "arn": role["arn"],
        "accountId": ACCOUNT,
        "userName": role["name"],
    }
    created = datetime.fromisoformat(identity["sessionContext"]["attributes"]["creationDate"])
    assert abs(created - (creds["Expiration"] - timedelta(hours=1))) <= timedelta(seconds=1)

    (assumed,) = _audit(server, "--principal", user["arn"], "--event-name", "AssumeRole")
    assert assumed["eventSource"] == "sts.amazonaws.com"
    assert assumed["requestParameters"] == {
        "roleArn": role["arn"],
        "roleSessionName": "audit-me",
    }
    assert assumed["responseElements"]["credentials"] == {
        "AccessKeyId": creds["AccessKeyId"],
        "Expiration": assumed["responseElements"]["credentials"]["Expiration"],
    }
    assert assumed["resources"] == [
        {"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role["arn"]}
    ]
    denied = [e for e in _audit(server, "--event-name", "AssumeRole") if "errorCode" in e]
    assert any(
        e["errorCode"] == "AccessDenied" and e["requestParameters"]["roleSessionName"] == "denied"
        for e in denied
    )
    # Every file of the data directory: the trail, and the SQLite database when there is one.
    for path, data in stored_files(server.data_dir).items():
        assert creds["SessionToken"].encode() not in data, path
        assert creds["SecretAccessKey"].encode() not in data, path


# -- expiry, under a clock the test controls ---------------------------------------------------


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    """A server in this process (SQLite) whose services' clock only moves when told."""
    with in_process(tmp_path_factory.mktemp("clocked") / "data", None) as server:
        yield server


def test_expired_session_token_is_refused(clocked: InProcess) -> None:
    name = f"shortlived-{uuid.uuid4().hex[:6]}"
    clocked.admin("create-role", name)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
    document = Path(tempfile.mkdtemp()) / "policy.json"
    document.write_text(json.dumps(_policy(_allow(["kms:*", "sts:AssumeRole"]))))
    clocked.admin("put-role-policy", name, str(document))
    creds = configparser.ConfigParser()
    creds.read(clocked.data_dir / "credentials")
    admin = {
        "AccessKeyId": creds["strongroom"]["aws_access_key_id"],
        "SecretAccessKey": creds["strongroom"]["aws_secret_access_key"],
    }
    kms = _client(clocked.endpoint, admin, use_token=False)
    key = kms.create_key(Description="expiry")["KeyMetadata"]

    # Issued by the STS endpoint (the server's clock) and by the admin command (the real
    # clock, which the server's starts from), both for the shortest duration.
    by_cli = json.loads(
        clocked.admin(
            "assume-role",
            "--role-arn",
            role_arn,
            "--session-name",
            "cli",
            "--duration-seconds",
            "900",
        ).stdout
    )["Credentials"]
    by_sts = _client(clocked.endpoint, by_cli, "sts").assume_role(
        RoleArn=role_arn, RoleSessionName="sts", DurationSeconds=900
    )["Credentials"]
    for creds_ in (by_cli, by_sts):
        _round_trip(_client(clocked.endpoint, creds_), key)

    clocked.clock.advance(timedelta(seconds=850))
    for creds_ in (by_cli, by_sts):
        _client(clocked.endpoint, creds_).describe_key(KeyId=key["Arn"])
    # Past both expirations (the admin command's clock ran ahead of the server's by the
    # time the setup took).
    clocked.clock.advance(timedelta(seconds=200))
    for creds_ in (by_cli, by_sts):
        assert_kms_error(
            "ExpiredTokenException",
            _client(clocked.endpoint, creds_).encrypt,
            KeyId=key["Arn"],
            Plaintext=b"too late",
            message=EXPIRED_TOKEN,
        )
        error = _fails(
            "ExpiredToken",
            _client(clocked.endpoint, creds_, "sts").assume_role,
            RoleArn=role_arn,
            RoleSessionName="again",
        )
        assert error["Message"] == EXPIRED_TOKEN
    assert kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "Enabled"

    # A day after they expired, the scheduled job forgets them.
    def stored() -> set[str]:
        with sqlite3.connect(clocked.data_dir / "strongroom.db") as db:
            return {row[0] for row in db.execute("SELECT access_key_id FROM role_sessions")}

    issued = {by_cli["AccessKeyId"], by_sts["AccessKeyId"]}
    assert issued <= stored()
    clocked.clock.advance(timedelta(days=1))

    def pruned() -> None:
        assert not issued & stored()

    eventually(pruned)
